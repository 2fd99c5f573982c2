//go:build linux

package portal

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/godbus/dbus/v5"
)

// callWait bounds the SaveFile call, not the person's answer.
var callWait = 10 * time.Second

const (
	service   = "org.freedesktop.portal.Desktop"
	object    = "/org/freedesktop/portal/desktop"
	chooser   = "org.freedesktop.portal.FileChooser"
	request   = "org.freedesktop.portal.Request"
	responded = request + ".Response"
)

// SaveFile shows the desktop's "Save" dialog titled title, proposing name,
// and returns the path the person chose, or "" if they cancelled. It
// blocks until they answer or ctx ends, so call it off the UI goroutine.
// It returns ErrUnavailable when the session has no portal with a file
// chooser.
func SaveFile(ctx context.Context, title, name string) (string, error) {
	conn, err := dbus.ConnectSessionBus(dbus.WithContext(ctx))
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	defer conn.Close()
	return saveFile(ctx, conn, title, name)
}

// saveFile is SaveFile on a bus connection of its own.
func saveFile(ctx context.Context, conn *dbus.Conn, title, name string) (string, error) {
	token, err := newToken()
	if err != nil {
		return "", err
	}
	// Listen for the answer before asking, at the path the portal will
	// use: a fast answer must not be missed.
	sender := strings.ReplaceAll(strings.TrimPrefix(conn.Names()[0], ":"), ".", "_")
	want := dbus.ObjectPath(object + "/request/" + sender + "/" + token)
	if err := conn.AddMatchSignalContext(ctx, dbus.WithMatchObjectPath(want), dbus.WithMatchInterface(request), dbus.WithMatchMember("Response")); err != nil {
		return "", fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	signals := make(chan *dbus.Signal, 4)
	conn.Signal(signals)
	defer conn.RemoveSignal(signals)

	opts := map[string]dbus.Variant{
		"handle_token": dbus.MakeVariant(token),
		"current_name": dbus.MakeVariant(name),
		"modal":        dbus.MakeVariant(true),
	}
	// The call itself returns at once with a request handle (the person
	// answers later, by signal); a portal that does not, within callWait
	// (starting it included), is taken for none.
	callCtx, cancel := context.WithTimeout(ctx, callWait)
	defer cancel()
	var handle dbus.ObjectPath
	err = conn.Object(service, object).CallWithContext(callCtx, chooser+".SaveFile", 0, "", title, opts).Store(&handle)
	if err != nil && ctx.Err() == nil && callCtx.Err() != nil {
		return "", fmt.Errorf("%w: no answer within %v", ErrUnavailable, callWait)
	}
	var de dbus.Error
	if errors.As(err, &de) || errors.Is(err, dbus.ErrMsgNoObject) {
		return "", fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if err != nil {
		return "", fmt.Errorf("asking the desktop's file chooser: %w", err)
	}
	if handle != want { // an older portal chose its own path
		if err := conn.AddMatchSignalContext(ctx, dbus.WithMatchObjectPath(handle), dbus.WithMatchInterface(request), dbus.WithMatchMember("Response")); err != nil {
			return "", fmt.Errorf("asking the desktop's file chooser: %w", err)
		}
	}
	for {
		select {
		case <-ctx.Done():
			conn.Object(service, handle).Call(request+".Close", 0)
			return "", ctx.Err()
		case s, ok := <-signals:
			if !ok {
				return "", errors.New("asking the desktop's file chooser: the session bus closed")
			}
			if s.Name != responded || s.Path != handle {
				continue
			}
			return chosen(s.Body)
		}
	}
}

// chosen reads a Response signal's body: (u response, a{sv} results).
func chosen(body []any) (string, error) {
	if len(body) != 2 {
		return "", errors.New("the desktop's file chooser gave an answer Countersign does not understand")
	}
	code, _ := body[0].(uint32)
	switch code {
	case 0:
	case 1:
		return "", nil // the person cancelled
	default:
		return "", errors.New("the desktop's file chooser closed without a file")
	}
	results, _ := body[1].(map[string]dbus.Variant)
	uris, _ := results["uris"].Value().([]string)
	if len(uris) != 1 {
		return "", errors.New("the desktop's file chooser gave no file")
	}
	u, err := url.Parse(uris[0])
	if err != nil || u.Scheme != "file" || u.Path == "" {
		return "", fmt.Errorf("the desktop's file chooser gave %q, which is not a local file", uris[0])
	}
	return u.Path, nil
}

func newToken() (string, error) {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return "countersign_" + hex.EncodeToString(b), nil
}
