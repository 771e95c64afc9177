# syntax=docker/dockerfile:1
# A static (musl) release binary in a minimal, non-root image.
# The binary is built by hack/image-binary.sh, the same script as `make image-binary`.

FROM docker.io/library/rust:1.95-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools=1.2.3-1 \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN hack/image-binary.sh

FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=0.3.0
LABEL org.opencontainers.image.title="loginprofile-operator" \
      org.opencontainers.image.description="Kubernetes operator for IAM console passwords (login profiles)" \
      org.opencontainers.image.source="https://github.com/loginprofile-operator/loginprofile-operator" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /src/target/x86_64-unknown-linux-musl/release/loginprofile-operator /usr/local/bin/loginprofile-operator
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/loginprofile-operator"]
CMD ["run"]
