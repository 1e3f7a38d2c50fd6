# Stand-ins for the official nginx, redis and postgres images of docker-compose.yml, for a machine that
# reaches Debian's mirror but no image registry (this project's CI): Debian bookworm's own packages of
# the same servers (nginx 1.22, Redis 7.0, PostgreSQL 15) in one image, on the base that
# deploy/podman/make-base-image.sh makes. deploy/podman/compose.host.yml runs each with its command.
#   podman build -f deploy/podman/services.Dockerfile -t localhost/ferry-services:bookworm deploy/podman
ARG BASE_IMAGE=localhost/ferry-base:node22-bookworm
FROM ${BASE_IMAGE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends nginx-light redis-server postgresql-15 \
 && rm -rf /var/lib/apt/lists/*
COPY postgres-entrypoint.sh /usr/local/bin/postgres-entrypoint.sh
ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
