package auth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// ErrTokenRefused means the server refused a token the person entered.
var ErrTokenRefused = errors.New("the server refused the token")

// CheckBearerToken asks a KindBearer server whether it accepts token,
// before it is kept: one MCP ping to the server's endpoint carrying it. A
// 401 or 403 answer gives ErrTokenRefused; a network failure is returned
// as is (Explain words both). Any other answer means the token was taken.
// The token is sent only to the server's own endpoint and never logged.
func (s *Service) CheckBearerToken(ctx context.Context, id, token string) error {
	srv, err := s.lookup(id)
	if err != nil {
		return err
	}
	if srv.cfg.Kind != KindBearer {
		return fmt.Errorf("server %s does not take a token", id)
	}
	if !validBearer(token) {
		return errors.New("that does not look like a token: it is empty or holds spaces or unusual characters")
	}
	body := `{"jsonrpc":"2.0","id":"countersign-token-check","method":"ping"}`
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.resource.String(), strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := s.o.HTTPClient.Do(req)
	if err != nil {
		return fmt.Errorf("checking the token with %s: %w", srv.cfg.Name, err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		return fmt.Errorf("%w: %s answered HTTP %d", ErrTokenRefused, srv.cfg.Name, resp.StatusCode)
	}
	return nil
}
