// Package phases times the steps of a gated tool call through the app,
// for the peer benchmark (bench/peers with BENCH_PHASES=1): how long the
// submitted record, the person's decision, the decision record, the
// server and the answer's check each take.
//
// It is built only with the phases build tag. Without it Mark is empty
// and compiled away, so the app people run carries no timing code. With
// it, the steps of one call are paired by order, which holds only while
// gated calls come one at a time, as the benchmark makes them.
package phases

// Point is a moment in a gated call's way through the app.
type Point int

// The points, in the order a gated call passes them.
const (
	Held            Point = iota // the relay starts holding the call
	Submitted                    // the submitted record is durable
	Shown                        // the call is published to the review window
	Decided                      // the person's decision reached the guard
	DecisionDurable              // the decision record is durable
	Sending                      // the relay starts sending it to the server
	Sent                         // the request is sent (HTTP: the server's answer has come)
	Answered                     // the relay has the server's answer
	Checked                      // the answer is checked and ready for the AI app
	points
)

// Names are the steps between consecutive points, as the benchmark prints
// them: Names[i] ends at point i+1.
var Names = [points - 1]string{
	"hold → submitted record durable",
	"→ shown to the person",
	"→ decision reached the guard",
	"→ decision record durable",
	"→ relay starts sending",
	"→ sent (HTTP: answered)",
	"→ relay has the answer",
	"→ answer checked",
}
