# hookrelay in a container: a multi-stage build, a non-root user, the
# embedded store on the /data volume. Untested in this project's CI (no
# container engine or registry is reachable there): see the README.
#
#   docker build -t hookrelay .
#   docker run -p 8080:8080 -v hookrelay-data:/data hookrelay
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p hookrelay

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home /data --shell /usr/sbin/nologin hookrelay \
 && install -d -o hookrelay -g hookrelay -m 0750 /data
COPY --from=build /src/target/release/hookrelay /usr/local/bin/hookrelay
USER hookrelay
VOLUME /data
EXPOSE 8080
ENV HOOKRELAY_LISTEN=0.0.0.0:8080 \
    HOOKRELAY_DATA_DIR=/data
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
  CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["hookrelay"]
CMD ["serve"]
