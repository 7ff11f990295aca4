# livepaxos as a container image: FROM scratch, the static binary and two
# empty directories, nothing else (no shell, no libc, no CA bundle: livepaxos
# is told its CAs by flags).
#
# The binary is built by the local Go toolchain, not in a build stage: no base
# image can be pulled where this is built. `make image` builds it and then
# this image:
#   CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o bin/livepaxos-static ./cmd/livepaxos
#   mkdir -p bin/image-dirs/data bin/image-dirs/certs
#   docker build -t livepaxos:dev .
# (README.md, "Containers", shows a multi-stage Dockerfile for machines that
# can pull golang images.)
FROM scratch

COPY bin/livepaxos-static /livepaxos
# /data (the data directory) and /certs (TLS files) belong to the user: an
# empty named volume mounted on either takes this ownership, so the node can
# write to it.
COPY --chown=65532:65532 bin/image-dirs/ /

# A numeric non-root user: there is no /etc/passwd to name one.
USER 65532:65532
# 7001: peer port (the other nodes); 7101: client port (gRPC and JSON).
EXPOSE 7001 7101
ENTRYPOINT ["/livepaxos"]
CMD ["--help"]
