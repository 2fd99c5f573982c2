package relay

import (
	"fmt"
	"testing"
)

// TestAFullStreamStillTakesTheAnswer is issue 16's dropped result: a server
// flooding notifications fills a slow host's stream; the answer to the
// host's request must still reach it, not be refused while the audit says
// it was delivered.
func TestAFullStreamStillTakesTheAnswer(t *testing.T) {
	st := newStream(true)
	for i := range maxQueued {
		if !st.push(fmt.Appendf(nil, `{"jsonrpc":"2.0","method":"notifications/message","params":{"n":%d}}`, i)) {
			t.Fatalf("notification %d refused before the stream was full", i)
		}
	}
	if st.push([]byte(`{"jsonrpc":"2.0","method":"notifications/message"}`)) {
		t.Fatal("a full stream took another notification")
	}
	answer := []byte(`{"jsonrpc":"2.0","id":1,"result":{}}`)
	if !st.pushAnswer(answer, []byte("1"), 0, nil) {
		t.Fatal("a full stream refused the answer")
	}
	q := st.take()
	if len(q) != maxQueued+1 || string(q[len(q)-1]) != string(answer) {
		t.Fatalf("queue holds %d messages, last %s", len(q), q[len(q)-1])
	}
	st.close()
	if st.pushAnswer(answer, []byte("1"), 0, nil) {
		t.Fatal("a closed stream took an answer")
	}
}
