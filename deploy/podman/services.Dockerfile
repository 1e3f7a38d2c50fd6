# Stand-ins for the registry images docker-compose.yml names (nginx:1.27-bookworm, redis:7.4-bookworm,
# postgres:16-bookworm), for a machine that reaches Debian's mirror but no image registry (this
# project's CI): Debian bookworm's own packages of the same servers (nginx 1.22, Redis 7.0,
# PostgreSQL 15), on the base deploy/podman/make-base-image.sh makes, started the way the official
# images start them. deploy/test/compose.test.mjs builds each target and tags it with the name the
# compose file uses, so docker-compose.yml runs unchanged.
ARG BASE_IMAGE=localhost/ferry-base:node22-bookworm
FROM ${BASE_IMAGE} AS servers
RUN apt-get update \
 && apt-get install -y --no-install-recommends nginx-light redis-server postgresql-15 \
 && rm -rf /var/lib/apt/lists/*
ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
LABEL org.opencontainers.image.description="Ferry test stand-in built from Debian packages, not the official image"

FROM servers AS nginx
STOPSIGNAL SIGQUIT
CMD ["nginx", "-g", "daemon off;"]

FROM servers AS redis
# The official image's entrypoint turns protected mode off when no config file is given, so other
# containers on the compose network may connect.
ENTRYPOINT ["sh", "-c", "if [ \"$1\" = redis-server ]; then shift; fi; exec redis-server \"$@\" --protected-mode no", "redis"]
WORKDIR /data

FROM servers AS postgres
COPY postgres-entrypoint.sh /usr/local/bin/postgres-entrypoint.sh
ENTRYPOINT ["/usr/local/bin/postgres-entrypoint.sh"]
