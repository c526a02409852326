# syntax=docker/dockerfile:1
# deid-gateway: the DICOM de-identification gateway (`deid-gateway serve`) as a container.
# See docs/container.md. test/deploy/container.test.ts replays what this file does (the files
# the runtime stage copies, the production install, USER, ENV, ENTRYPOINT + CMD, HEALTHCHECK)
# without Docker, so keep to the instructions that test understands.
#
# Node.js 24 "Krypton" (LTS) on Debian 13 "trixie", slim. Pin a digest for production builds:
#   docker build --build-arg NODE_IMAGE=node:24-trixie-slim@sha256:<digest> .
ARG NODE_IMAGE=node:24-trixie-slim

# --- build: compile the TypeScript (dev dependencies live only in this stage) --------------
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
# --ignore-scripts: the package's `prepare` script would compile before the sources are here.
RUN --mount=type=cache,target=/root/.npm npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
RUN npm run build

# --- deps: production dependencies only, installed without running any package script -----
FROM ${NODE_IMAGE} AS deps
WORKDIR /deps
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --omit=dev --ignore-scripts --no-audit --no-fund

# --- runtime --------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
# tini as PID 1 forwards SIGTERM/SIGINT to node (which drains and stops) and reaps zombies.
# npm, npx, corepack and yarn are not needed at run time: removed (smaller attack surface).
# The gateway runs as uid/gid 10001; only the volume directories are writable by it.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/* \
 && rm -rf /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack /opt/yarn-* \
           /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack /usr/local/bin/yarn /usr/local/bin/yarnpkg \
 && groupadd --system --gid 10001 deid \
 && useradd --system --uid 10001 --gid deid --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin deid \
 && mkdir -p /var/lib/deid-gateway/spool /var/lib/deid-gateway/research /var/log/deid-gateway \
 && chown -R 10001:10001 /var/lib/deid-gateway /var/log/deid-gateway \
 && chmod 0750 /var/lib/deid-gateway/spool /var/lib/deid-gateway/research /var/log/deid-gateway
WORKDIR /app
ENV NODE_ENV=production
# Owned by root and not writable by the gateway's user: /app can be (and should be) read-only.
COPY package.json package-lock.json ./
COPY --from=deps /deps/node_modules ./node_modules
COPY --from=build /src/dist/src ./dist/src
COPY config ./config
USER 10001:10001
# Quarantine lives inside the spool (spool/quarantine: moved there by rename, so same volume).
VOLUME ["/var/lib/deid-gateway/spool", "/var/lib/deid-gateway/research", "/var/log/deid-gateway"]
# DIMSE (C-ECHO, C-STORE) and the HTTP API (/healthz, /readyz, /metrics, /api/...).
EXPOSE 11112 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "require('node:http').get({host:'127.0.0.1',port:Number(process.env.DEID__API__PORT||8080),path:'/healthz',timeout:4000},(r)=>process.exit(r.statusCode===200?0:1)).on('timeout',()=>process.exit(1)).on('error',()=>process.exit(1))"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/tini", "--", "node", "--initial-old-space-size=128", "/app/dist/src/cli/main.js"]
CMD ["serve", "--config", "/app/config/container.yaml"]
