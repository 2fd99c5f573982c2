package hostwait

import (
	"testing"
	"time"
)

func TestBudgets(t *testing.T) {
	tab := Default()
	tests := []struct {
		client   string
		via      Via
		progress bool
		want     time.Duration
	}{
		{"claude-ai", ViaBridge, false, 60 * time.Second},
		{"claude-ai", ViaBridge, true, 60 * time.Second}, // Claude Desktop ignores progress for local servers
		{"claude-ai", ViaHTTP, false, 4 * time.Minute},
		{"Cursor", ViaHTTP, false, 5 * time.Minute},
		{"cursor-vscode", ViaHTTP, false, 5 * time.Minute}, // Cursor's own name holds "vscode": Cursor comes first
		{"Visual Studio Code", ViaHTTP, false, 0},
		{"some-new-app", ViaHTTP, false, 60 * time.Second},
		{"some-new-app", ViaHTTP, true, 0},
		{"", ViaBridge, false, 60 * time.Second},
	}
	for _, tt := range tests {
		if got := tab.Budget(tt.client, tt.via, tt.progress); got != tt.want {
			t.Errorf("Budget(%q, %s, progress %v) = %v, want %v", tt.client, tt.via, tt.progress, got, tt.want)
		}
	}
}

func TestOverridesComeFirst(t *testing.T) {
	tab := Default().With([]Host{{Match: "Claude", Budget: 30 * time.Second}})
	if got := tab.Budget("claude-ai", ViaHTTP, false); got != 30*time.Second {
		t.Fatalf("override not used: %v", got)
	}
	if got := Default().Budget("claude-ai", ViaHTTP, false); got != 4*time.Minute {
		t.Fatalf("With changed the default table: %v", got)
	}
}

func TestAnswerBy(t *testing.T) {
	for budget, want := range map[time.Duration]time.Duration{
		60 * time.Second: 55 * time.Second,
		4 * time.Second:  3 * time.Second,
		0:                0,
	} {
		if got := AnswerBy(budget); got != want {
			t.Errorf("AnswerBy(%v) = %v, want %v", budget, got, want)
		}
	}
}

func TestParseRefusesNonsense(t *testing.T) {
	for _, b := range []string{
		`{"unknown":"soon","hosts":[]}`,
		`{"unknown":"60s","hosts":[{"match":"x","budget":"-1s"}]}`,
		`{"unknown":"60s","hosts":[{"match":"","budget":"1s"}]}`,
		`{"unknown":"60s","hosts":[{"match":"x","via":"carrier pigeon","budget":"1s"}]}`,
	} {
		if _, err := parse([]byte(b)); err == nil {
			t.Errorf("parse accepted %s", b)
		}
	}
}
