# syntax=docker/dockerfile:1
# Ferry: a multi-stage image. `build` installs every workspace's dependencies, compiles the TypeScript and
# the dashboard; `runtime` keeps only the compiled server, tools (with the price table), the dashboard's
# static files and production node_modules, carries no compiler, and runs as the unprivileged `node` user.
# Models are mounted at /models (docker run -v ./models:/models:ro), or baked in with the `with-models`
# target:  docker build --target with-models -t ferry:models .
#
# Debian slim rather than Alpine: onnxruntime-node ships glibc binaries only.
#
# NODE_IMAGE is the base of both stages. Production uses the official image; a machine that reaches no
# image registry builds a stand-in with deploy/podman/make-base-image.sh and passes
#   --build-arg NODE_IMAGE=localhost/ferry-base:node22-bookworm
#
# npm's registry configuration reaches the build as two optional secrets, never as a layer:
#   --secret id=npmrc,src=$HOME/.npmrc      an npmrc (registry, token, `cafile=/run/secrets/npm-ca`)
#   --secret id=npm-ca,src=/path/to/ca.pem  a CA bundle for a TLS-intercepting proxy
# The CA is mounted under /run/secrets, not over /etc/ssl/certs, so apt's ca-certificates still installs.
ARG NODE_IMAGE=node:22-bookworm-slim

FROM ${NODE_IMAGE} AS build
# better-sqlite3 downloads a prebuilt binary when it can and compiles one with node-gyp when it cannot
# (no route to its release host): that needs python3, make and g++, in this stage only. node-gyp
# finds Node's headers under /usr/local (both the official image and the stand-in ship them), so it
# does not download them either.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
ENV npm_config_nodedir=/usr/local \
    ONNXRUNTIME_NODE_INSTALL=skip \
    npm_config_update_notifier=false
WORKDIR /app
# Manifests first, so the dependency layer is cached until they change. Every workspace's manifest is
# needed for `npm ci` to match the lockfile.
COPY package.json package-lock.json .npmrc tsconfig.base.json ./
COPY packages/core/package.json packages/core/
COPY packages/client/package.json packages/client/
COPY packages/server/package.json packages/server/
COPY packages/server/bin packages/server/bin
COPY packages/tools/package.json packages/tools/
COPY packages/test-kit/package.json packages/test-kit/
COPY packages/dashboard/package.json packages/dashboard/
COPY examples/package.json examples/
COPY examples/web-app/package.json examples/web-app/
# --ignore-scripts: the root `prepare` (the whole build and the example models) needs sources that are
# not copied yet, and onnxruntime-node's postinstall would fetch CUDA libraries this image cannot use
# (ONNXRUNTIME_NODE_INSTALL=skip says the same for npm versions that run it anyway). The two native
# modules that need their install step get it from `npm rebuild`.
RUN --mount=type=secret,id=npmrc --mount=type=secret,id=npm-ca \
    NPM_CONFIG_USERCONFIG=/run/secrets/npmrc npm ci --ignore-scripts --no-audit --no-fund \
 && NPM_CONFIG_USERCONFIG=/run/secrets/npmrc npm rebuild better-sqlite3 msgpackr-extract
COPY packages packages
# After the build: production dependencies only, no compiled tests, and only this platform's
# onnxruntime-node binaries (the package ships every platform's).
RUN npx tsc -b packages/core packages/server packages/tools packages/client \
 && npm run build -w @ferry/dashboard \
 && npm prune --omit=dev --no-audit --no-fund \
 && find packages -name '*.test.js' -o -name '*.test.d.ts' -o -name '*.test.js.map' -o -name '*.tsbuildinfo' | xargs rm -f \
 && ort=node_modules/onnxruntime-node/bin/napi-v6 \
 && keep="$(node -p 'process.platform + "/" + process.arch')" \
 && find "$ort" -mindepth 2 -maxdepth 2 -type d | grep -v "/$keep\$" | xargs rm -rf

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    FERRY_MODELS_DIR=/models \
    FERRY_STORE_SQLITE_PATH=/data/ferry.sqlite \
    FERRY_SERVER_PORT=8080
WORKDIR /app
COPY --from=build --chown=node:node /app/package.json ./
COPY --from=build --chown=node:node /app/node_modules ./node_modules
COPY --from=build --chown=node:node /app/packages/core/package.json ./packages/core/
COPY --from=build --chown=node:node /app/packages/core/dist ./packages/core/dist
COPY --from=build --chown=node:node /app/packages/server/package.json ./packages/server/
COPY --from=build --chown=node:node /app/packages/server/bin ./packages/server/bin
COPY --from=build --chown=node:node /app/packages/server/dist ./packages/server/dist
# The Open Inference Protocol's gRPC service definition, read at start when grpc.port is set.
COPY --from=build --chown=node:node /app/packages/server/proto ./packages/server/proto
# ferry quantize, bench and cost (and the price table) come from @ferry/tools.
COPY --from=build --chown=node:node /app/packages/tools/package.json /app/packages/tools/prices.yaml ./packages/tools/
COPY --from=build --chown=node:node /app/packages/tools/dist ./packages/tools/dist
# The dashboard at `/`: the server finds it beside itself (packages/dashboard/dist).
COPY --from=build --chown=node:node /app/packages/dashboard/dist ./packages/dashboard/dist
RUN mkdir -p /models /data && chown node:node /models /data
USER node
VOLUME ["/data"]
EXPOSE 8080
# Liveness only: /healthz answers as soon as the port is open; readiness (/readyz) is the
# orchestrator's job (Kubernetes probe, proxy) because it is false while models warm and while draining.
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.FERRY_SERVER_PORT||8080)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# SIGTERM drains: readiness 503 at once, in-flight requests finish, exit before server.shutdownGraceMs.
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "/app/packages/server/dist/cli/main.js"]
CMD ["serve"]

FROM runtime AS with-models
COPY --chown=node:node models /models
