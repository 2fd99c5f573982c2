// Package bench measures what the relay costs: sequential tools/call
// latency and throughput against an upstream directly and through the relay,
// in the same run. The benchmarks live in _test.go files because they need
// an in-process approver, which the product does not have; run them with
// bench/run or `go test ./bench -run '^$' -bench .`.
package bench
