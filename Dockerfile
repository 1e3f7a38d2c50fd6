# syntax=docker/dockerfile:1
# Ferry: a multi-stage image. `build` compiles TypeScript with the dev dependencies; `runtime` keeps
# only the compiled server and tools (with the price table) and production node_modules, and runs as the
# unprivileged `node` user. Models are mounted at /models (docker run -v ./models:/models:ro), or
# baked in with the `with-models` target:  docker build --target with-models -t ferry:models .
#
# Debian slim rather than Alpine: onnxruntime-node ships glibc binaries only.

FROM node:20-bookworm-slim AS build
WORKDIR /app
# Manifests first, so the dependency layer is cached until they change.
COPY package.json package-lock.json tsconfig.base.json ./
COPY packages/core/package.json packages/core/
COPY packages/server/package.json packages/server/
COPY packages/tools/package.json packages/tools/
COPY examples/package.json examples/
RUN npm ci
COPY packages/core packages/core
COPY packages/server packages/server
COPY packages/tools packages/tools
RUN npx tsc -b packages/core packages/server packages/tools \
 && npm prune --omit=dev \
 && rm -rf packages/*/src packages/*/tsconfig*.json \
 && find packages -name '*.test.js' -delete

FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production \
    FERRY_MODELS_DIR=/models \
    FERRY_STORE_SQLITE_PATH=/data/ferry.sqlite \
    FERRY_SERVER_PORT=8080
WORKDIR /app
COPY --from=build --chown=node:node /app/package.json ./
COPY --from=build --chown=node:node /app/node_modules ./node_modules
COPY --from=build --chown=node:node /app/packages/core ./packages/core
COPY --from=build --chown=node:node /app/packages/server ./packages/server
# ferry quantize, bench and cost (and the price table) come from @ferry/tools.
COPY --from=build --chown=node:node /app/packages/tools ./packages/tools
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
