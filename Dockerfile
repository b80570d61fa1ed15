# syntax=docker/dockerfile:1
# Image of akv-csi-provider, the Azure Key Vault provider for the Secrets Store CSI Driver.
#   docker build -t <registry>/akv-csi-provider:<tag> .
#   docker buildx build --platform linux/amd64,linux/arm64 -t <registry>/akv-csi-provider:<tag> --push .
# then set the chart's linux.image.repository and linux.image.tag. Releases are built by
# .github/workflows/release.yml.
#
# Multi-architecture by cross-compilation, not emulation: the builder stage always runs on the
# build machine's own platform (BUILDPLATFORM) and compiles for TARGETPLATFORM with Rust's
# target and Debian's cross gcc (the linker, and the C compiler ring needs); the final stage
# only copies the binary, so it runs no code for the target. Building arm64 natively under QEMU
# would run rustc emulated, many times slower with the release profile's fat LTO.

# The Rust release that CI tests with (RUST_TOOLCHAIN in .github/workflows/ci.yml): move them together.
ARG RUST_VERSION=1.95.0

FROM --platform=$BUILDPLATFORM rust:${RUST_VERSION}-bookworm AS builder
ARG TARGETPLATFORM
ARG TARGETARCH
ARG BUILDARCH
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /src

# Rust target, and for a foreign target Debian's cross compiler and libc (bookworm's glibc 2.36,
# the same as the runtime image's), written to /cargo-env for the build step. The cross packages
# come from the builder image's Debian release and are not pinned further; $packages is split
# into words on purpose.
# hadolint ignore=DL3008,SC2086
RUN set -eu; \
    case "$TARGETARCH" in \
      amd64) triple=x86_64-unknown-linux-gnu gnu=x86_64-linux-gnu machine=X86-64 \
             packages="gcc-x86-64-linux-gnu libc6-dev-amd64-cross" ;; \
      arm64) triple=aarch64-unknown-linux-gnu gnu=aarch64-linux-gnu machine=AArch64 \
             packages="gcc-aarch64-linux-gnu libc6-dev-arm64-cross" ;; \
      *) echo "unsupported target platform ${TARGETPLATFORM} (supported: linux/amd64, linux/arm64)" >&2; exit 1 ;; \
    esac; \
    { echo "export CARGO_BUILD_TARGET=$triple"; echo "export EXPECTED_MACHINE=$machine"; } >/cargo-env; \
    if [ "$TARGETARCH" != "$BUILDARCH" ]; then \
      apt-get update; \
      apt-get install -y --no-install-recommends $packages; \
      rm -rf /var/lib/apt/lists/*; \
      rustup target add "$triple"; \
      env_triple=$(echo "$triple" | tr 'a-z-' 'A-Z_'); \
      cc_triple=$(echo "$triple" | tr '-' '_'); \
      { echo "export CARGO_TARGET_${env_triple}_LINKER=$gnu-gcc"; \
        echo "export CC_${cc_triple}=$gnu-gcc"; \
        echo "export AR_${cc_triple}=$gnu-ar"; } >>/cargo-env; \
    fi; \
    cat /cargo-env

COPY . .
# Cache mounts (BuildKit) keep downloaded crates and build artefacts between local builds, one
# set per target architecture so that both platforms of a multi-platform build compile in
# parallel; the binary is copied out of the cached target directory in the same step, after
# checking that it is an ELF executable for the target's machine.
RUN --mount=type=cache,id=akv-csi-provider-cargo-registry-${TARGETARCH},target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,id=akv-csi-provider-target-${TARGETARCH},target=/src/target,sharing=locked \
    set -eu; \
    . /cargo-env; \
    cargo build --release --locked --target "$CARGO_BUILD_TARGET" --bin akv-csi-provider; \
    binary="target/$CARGO_BUILD_TARGET/release/akv-csi-provider"; \
    machine=$(readelf -h "$binary" | grep -E '^ *Machine:'); \
    case "$machine" in *"$EXPECTED_MACHINE"*) ;; \
      *) echo "$binary is not an $EXPECTED_MACHINE executable: $machine" >&2; exit 1 ;; esac; \
    install -D -m 0755 "$binary" /out/akv-csi-provider

# distroless "cc" rather than "static": the binary links glibc dynamically (libc, libm,
# libgcc_s), as Rust's default linux-gnu targets do, and cc-debian12 ships exactly those from
# Debian 12, the same release as the bookworm builder and its cross libc, so the glibc versions
# match. TLS is pure Rust (rustls with ring): no OpenSSL is needed. The image includes the
# Mozilla CA roots in /etc/ssl/certs, which the provider uses to verify Entra ID and Key Vault
# (add private CAs with --extra-ca-file). No shell or package manager. Resolved per
# TARGETPLATFORM from the multi-architecture index; the nonroot tag is the same image with
# USER 65532 (set again below).
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=builder /out/akv-csi-provider /usr/local/bin/akv-csi-provider

# Non-root by default: 65532 is distroless's "nonroot" user, enough for `lint`, `mount
# --dry-run`, `--version` and a provider whose socket directory that user owns. The node
# DaemonSet needs root, and the chart sets it explicitly (securityContext.runAsUser: 0, as the
# upstream chart and manifests do, and sync-controller-values.yaml): the provider creates its
# socket (mode 0700) in the host directory shared with the CSI driver,
# /var/run/secrets-store-csi-providers, which is root-owned, and the driver connects as root.
# The chart also drops every capability, forbids privilege escalation and mounts the root file
# system read-only. To run the DaemonSet as non-root, give the provider a host directory owned by
# that user (chart README, "Running as non-root").
USER 65532:65532

# 8989: /healthz; 8898: Prometheus /metrics (the pod uses the host network).
EXPOSE 8989 8898
ENTRYPOINT ["/usr/local/bin/akv-csi-provider"]
CMD ["--endpoint=unix:///provider/azure.sock"]
