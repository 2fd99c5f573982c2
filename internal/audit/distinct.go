package audit

import (
	"context"
	"database/sql"
	"fmt"
)

// Column names a text column whose distinct values Distinct lists.
type Column string

// The columns Distinct lists, each of which has an index.
const (
	ColumnServer Column = "server"
	ColumnTool   Column = "tool"
	ColumnClient Column = "client"
)

// distinctQuery is the query for column c: a skip scan down the column's
// index, one index seek per distinct value, so its cost grows with the
// number of values listed, not the number of events. c is one of the
// constants above, never input.
func distinctQuery(c Column) (string, bool) {
	switch c {
	case ColumnServer, ColumnTool, ColumnClient:
	default:
		return "", false
	}
	col := string(c)
	return `WITH RECURSIVE v(x) AS (
	SELECT min(` + col + `) FROM events WHERE ` + col + ` > ''
	UNION ALL
	SELECT (SELECT min(` + col + `) FROM events WHERE ` + col + ` > v.x) FROM v WHERE v.x IS NOT NULL
)
SELECT x FROM v WHERE x IS NOT NULL LIMIT ?`, true
}

// Distinct returns up to limit distinct non-empty values of column c, in
// byte order, for the viewer's filter menus. more reports that values
// beyond limit exist. limit <= 0 means MaxPageSize.
func (l *Log) Distinct(ctx context.Context, c Column, limit int) (values []string, more bool, err error) {
	q, ok := distinctQuery(c)
	if !ok {
		return nil, false, fmt.Errorf("listing audit values: unknown column %q", c)
	}
	if limit <= 0 {
		limit = MaxPageSize
	}
	if err := l.readable(); err != nil {
		return nil, false, err
	}
	tx, err := l.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, false, fmt.Errorf("listing audit %ss: %w", c, err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, q, limit+1)
	if err != nil {
		return nil, false, fmt.Errorf("listing audit %ss: %w", c, err)
	}
	defer rows.Close()
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, false, fmt.Errorf("listing audit %ss: %w", c, err)
		}
		if len(values) == limit {
			more = true
			break
		}
		values = append(values, s)
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("listing audit %ss: %w", c, err)
	}
	return values, more, nil
}
