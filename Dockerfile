# syntax=docker/dockerfile:1
# Image of akv-csi-provider, the Azure Key Vault provider for the Secrets Store CSI Driver.
#   docker build -t <registry>/akv-csi-provider:<tag> .
# then set the chart's linux.image.repository and linux.image.tag.
# Multi-architecture: docker buildx build --platform linux/amd64,linux/arm64 ... (the builder
# compiles natively per platform, so arm64 under emulation is slow).

FROM rust:1-bookworm AS builder
WORKDIR /src
COPY . .
# Cache mounts keep downloaded crates and build artefacts between builds (BuildKit); the binary
# is copied out of the cached target directory in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin akv-csi-provider \
 && install -D -m 0755 target/release/akv-csi-provider /out/akv-csi-provider

# distroless "cc" rather than "static": the binary links glibc dynamically (libc, libm,
# libgcc_s), as Rust's default linux-gnu target does, and cc-debian12 ships exactly those from
# Debian 12, the same release as the rust:1-bookworm builder, so the glibc versions match. TLS is
# pure Rust (rustls with ring): no OpenSSL is needed. The image includes the Mozilla CA roots in
# /etc/ssl/certs, which the provider uses to verify Entra ID and Key Vault (add private CAs with
# --extra-ca-file). No shell or package manager.
FROM gcr.io/distroless/cc-debian12
COPY --from=builder /out/akv-csi-provider /usr/local/bin/akv-csi-provider

# Root by default. The provider creates its socket (mode 0700) in the host directory shared
# with the CSI driver, /var/run/secrets-store-csi-providers, which is root-owned; the driver
# connects as root. The chart still drops every capability, forbids privilege escalation and
# mounts the root file system read-only.
# To run as non-root (e.g. 65532, the "nonroot" user of distroless), give the provider a host
# directory owned by that user, list it in the driver's linux.additionalProvidersDirs, and set the
# chart's linux.providersDir, linux.runAsUser and linux.runAsNonRoot (chart README, "Running as
# non-root"); or build FROM gcr.io/distroless/cc-debian12:nonroot.
USER 0:0

# 8989: /healthz; 8898: Prometheus /metrics (the pod uses the host network).
EXPOSE 8989 8898
ENTRYPOINT ["/usr/local/bin/akv-csi-provider"]
CMD ["--endpoint=unix:///provider/azure.sock"]
