// bittorrent-tracker's WebSocket server alone (its index.js and CLI need node-datachannel's
// native module, which `npm install --ignore-scripts` leaves unbuilt): the peer tracker of
// scripts/bench-ws.sh and of wsload's test.
//
//   node server.mjs PORT [HOST]      # prints "listening HOST:PORT" once it accepts connections
//
// SIGTERM closes it. Warnings (a client's bad message) are counted, not printed: a benchmark
// would flood the log; the count is printed at exit.
import Server from 'bittorrent-tracker/server'

const port = Number(process.argv[2])
const host = process.argv[3] || '127.0.0.1'
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  console.error('usage: node server.mjs PORT [HOST]')
  process.exit(2)
}
let warnings = 0
const server = new Server({ http: false, udp: false, ws: true, stats: false })
server.on('error', err => {
  console.error(`bittorrent-tracker: ${err.message}`)
  process.exit(1)
})
server.on('warning', () => { warnings++ })
server.on('listening', () => console.log(`listening ${host}:${port}`))
server.listen(port, host)
const stop = () => {
  console.log(`warnings ${warnings}`)
  server.close(() => process.exit(0))
  setTimeout(() => process.exit(0), 5000).unref()
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
