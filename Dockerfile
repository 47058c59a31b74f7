# webswarm: `tracker` and `seedctl` as static binaries in an image with nothing else in it.
#
#   docker build -t webswarm .            # or: buildah bud -t webswarm .
#   docker run -d -p 6969:6969/tcp -p 6969:6969/udp -v webswarm-state:/var/lib/webswarm webswarm
#   docker run --rm webswarm seedctl --help
#
# The default command is the tracker with its embedded defaults: HTTP and UDP on 6969, the
# state file tracker-state.bencode in /var/lib/webswarm (a volume), access log on stdout.
# Flags go after the program name: `docker run webswarm tracker --nat_check 0`.
#
# Offline builds: pass the module proxy and flags the host uses, e.g. a file:// proxy made
# from a module cache mounted into the build:
#   buildah bud -v "$(go env GOMODCACHE)/cache/download:/goproxy:ro" \
#     --build-arg GOPROXY=file:///goproxy,off -t webswarm .

FROM golang:1.26-bookworm AS build
# Module proxy and go flags from the caller; unset means Go's defaults.
ARG GOPROXY
ARG GOFLAGS
ENV CGO_ENABLED=0 GOTOOLCHAIN=local
WORKDIR /src
# Modules first: this layer is reused while go.mod and go.sum stay the same.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN go build -trimpath -ldflags='-s -w' -o /rootfs/usr/local/bin/ ./tracker ./seedctl
# The final image has no shell, so its few files are laid out here: an unprivileged user
# (for tools that look the user up), the state directory it owns, CA certificates for
# https:// .torrent and web-seed URLs, and a /tmp.
RUN mkdir -p /rootfs/etc/ssl/certs /rootfs/var/lib/webswarm /rootfs/tmp \
 && echo 'webswarm:x:65532:65532:webswarm:/var/lib/webswarm:/nonexistent' > /rootfs/etc/passwd \
 && echo 'webswarm:x:65532:' > /rootfs/etc/group \
 && cp /etc/ssl/certs/ca-certificates.crt /rootfs/etc/ssl/certs/ \
 && chown 65532:65532 /rootfs/var/lib/webswarm \
 && chmod 1777 /rootfs/tmp

FROM scratch
COPY --from=build /rootfs/ /
USER 65532:65532
WORKDIR /var/lib/webswarm
VOLUME /var/lib/webswarm
# HTTP announce/scrape, stats and /metrics on tcp; BEP 15 announce on udp.
EXPOSE 6969/tcp 6969/udp
ENV PATH=/usr/local/bin
CMD ["tracker"]
