# The plexus image, equal to `make image` (hack/image/plexus.json; the tests
# in hack/image keep the two the same). Build the binaries first:
#   make build
#   docker build -t registry.example/plexus:v1 \
#     --build-arg VERSION=$(git describe --tags --always --dirty) \
#     --build-arg REVISION=$(git rev-parse HEAD) .
FROM scratch
ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="plexus" \
      org.opencontainers.image.description="Multi-network pods for Kubernetes: plexus, plexus-shim, plexus-ipam, plexus-ipam-local, plexusd, plexus-controller, plexusctl" \
      org.opencontainers.image.source="https://github.com/plexus-cni/plexus" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
ENV PATH=/usr/local/bin
# plexusd installs the CNI plugins (plexus, plexus-shim, plexus-ipam,
# plexus-ipam-local) from its own directory into the node's CNI bin dir:
# the seven plexus binaries stay together. dhcp is the reference dhcp plugin,
# whose daemon plexusd runs while the node uses DHCP.
COPY bin/plexus bin/plexus-shim bin/plexus-ipam bin/plexus-ipam-local bin/plexusd bin/plexus-controller bin/plexusctl bin/dhcp /usr/local/bin/
ENTRYPOINT ["/usr/local/bin/plexusd"]
