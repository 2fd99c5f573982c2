// Package reliability proves Countersign under load and faults, through the
// app's own wiring (app.Run: guard, audit on a real SQLite file, pins,
// relay, listener) with an in-process approver standing in for the person.
//
// The tests run when COUNTERSIGN_RELIABILITY=1 (scripts/test sets it in a
// step of its own). RELIABILITY_SCALE multiplies the load: 1 (the default)
// is 50 AI-app sessions of 200 calls each; RELIABILITY_SCALE=10 makes each
// session ten times longer. The real npm MCP peers are used when
// COUNTERSIGN_PEERS names them, as for package peers.
package reliability
