// Package udpapi is the tracker's UDP frontend: the UDP tracker protocol of BEP 15
// (connect, announce, scrape and error packets), with BEP 15's IPv6 answers (18-byte peers
// when the announce arrives over IPv6) and BEP 41's announce options (accepted and ignored:
// the tracker has no use for the URL they carry).
//
// A Server parses packets into announce.Request values and hands them to an announce.Tracker,
// the transport-free core; it writes the core's announce.Response back in BEP 15's binary
// layout. A client's mistake (a parse error or an announce.ClientError) becomes an error
// packet carrying the reason.
//
// Connection IDs are stateless: an ID is a keyed SipHash-2-4 of the client's address and
// port and a time bucket, under a key drawn at random when the Server is made. Verifying one
// costs two hashes and no memory per client, so a flood of spoofed connects costs nothing to
// remember. An ID is accepted for at least Config.ConnIDLifetime (BEP 15: two minutes) and
// at most twice that.
//
// A packet too short to hold a transaction ID is dropped. An error packet to a sender no
// connection ID vouches for (a connect, an unknown action, a bad connection ID) is cut to
// the request's length, so that spoofed requests cannot use the tracker as an amplifier.
//
// Metrics: webswarm_tracker_udp_packets_total{action,outcome} counts every packet
// (action: connect, announce, scrape, unknown; outcome: ok, failed, error,
// bad_connection_id, dropped), webswarm_tracker_udp_send_errors_total the replies the socket
// refused. Refusals also count in the core's webswarm_tracker_failures_total, except bad
// connection IDs, which are routine after a restart. Request latency goes to the histogram
// the caller passes as Config.Latency.
//
// Several goroutines read the same socket, each with its own buffers. On Linux a worker
// reads every datagram waiting on a *net.UDPConn (up to 32) with one recvmmsg and sends
// their replies with one sendmmsg; elsewhere, and for other net.PacketConns, it reads one
// datagram at a time. Either way serving an announce allocates nothing once a worker's
// buffers have grown to the largest reply.
package udpapi
