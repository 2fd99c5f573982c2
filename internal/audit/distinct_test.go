package audit

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDistinct(t *testing.T) {
	l, _ := fixtureLog(t, queryFixture)
	tests := []struct {
		name  string
		col   Column
		limit int
		want  []string
		more  bool
	}{
		{"servers in byte order, empty left out", ColumnServer, 0, []string{"github", "jira", "sonarqube"}, false},
		{"tools", ColumnTool, 0, []string{"create_issue", "delete_repository", "get_issues", "search_code"}, false},
		{"clients", ColumnClient, 0, []string{"Claude Desktop", "Cursor"}, false},
		{"a limit says more exist", ColumnTool, 2, []string{"create_issue", "delete_repository"}, true},
		{"a limit of exactly all", ColumnServer, 3, []string{"github", "jira", "sonarqube"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, more, err := l.Distinct(context.Background(), tt.col, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" || more != tt.more {
				t.Errorf("more %v (want %v), values (-want +got)\n%s", more, tt.more, diff)
			}
		})
	}
}

func TestDistinctEmptyLog(t *testing.T) {
	l, _, _ := openTest(t, Options{})
	got, more, err := l.Distinct(context.Background(), ColumnServer, 10)
	if err != nil || len(got) != 0 || more {
		t.Errorf("Distinct on an empty log = %q, %v, %v", got, more, err)
	}
}

func TestDistinctRefusesOtherColumns(t *testing.T) {
	l, _, _ := openTest(t, Options{})
	for _, c := range []Column{"reason", "server; DROP TABLE events", ""} {
		if _, _, err := l.Distinct(context.Background(), c, 10); err == nil {
			t.Errorf("Distinct(%q) was accepted", c)
		}
	}
}

func TestDistinctAfterClose(t *testing.T) {
	l, _, _ := openTest(t, Options{})
	l.Close()
	if _, _, err := l.Distinct(context.Background(), ColumnTool, 10); !errors.Is(err, ErrClosed) {
		t.Errorf("Distinct after Close: %v, want ErrClosed", err)
	}
}

// TestDistinctUsesTheIndex checks the skip scan seeks the column's index
// rather than reading every event.
func TestDistinctUsesTheIndex(t *testing.T) {
	l, _, _ := openTest(t, Options{})
	for _, c := range []Column{ColumnServer, ColumnTool, ColumnClient} {
		q, _ := distinctQuery(c)
		rows, err := l.r.Query(`EXPLAIN QUERY PLAN `+q, 10)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		text := strings.Join(plan, "\n")
		if strings.Contains(text, "SCAN events") || !strings.Contains(text, "INDEX events_"+string(c)) {
			t.Errorf("%s: plan does not seek the index:\n%s", c, text)
		}
	}
}
