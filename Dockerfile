# A bot's image: `knbot serve` on Node 24, non-root, no dev dependencies, ready for a read-only root.
#   podman build --build-arg BOT=echo -t registry.example/echo:1 .
# Node 24 runs the TypeScript sources directly (type stripping), so the build stage only installs
# the production dependencies.
ARG NODE_IMAGE=docker.io/library/node:24-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: the devDependency `node` (the project's Node 24 for machines without one) is not
# installed in production, and no production dependency needs an install script.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

FROM ${NODE_IMAGE}
ARG BOT=echo
ENV NODE_ENV=production \
    PORT=8080 \
    KNBOT_BOT_DIR=/app/functions/${BOT}
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY package.json ./
COPY cli ./cli
COPY eventing ./eventing
COPY runtime ./runtime
# knative/ and gateway/: the operator (knbot operator) and the gateway (knbot gateway) run from the
# same image.
COPY knative ./knative
COPY gateway ./gateway
# The bot, and the example bots beside it (the llm bot grounds its answers in the faq bot's index).
COPY functions ./functions
# A numeric non-root user: Kubernetes' runAsNonRoot can check it.
USER 1000:1000
EXPOSE 8080
ENTRYPOINT ["node", "/app/cli/knbot.js", "serve"]
