//go:build linux

package notify

import (
	"bytes"
	"fmt"
	"image"
	"image/draw"
	"image/png"
	"io"
	"log"
	"sync"

	fdo "github.com/esiqveland/notify"
	"github.com/godbus/dbus/v5"
)

// Desktop sends native notifications with beeep. On Linux it is also a
// [Poster], talking to org.freedesktop.Notifications itself.
type Desktop struct {
	appName string
	icon    []byte

	mu    sync.Mutex
	fdo   fdo.Notifier      // connected on the first Post; nil before
	opens map[uint32]func() // what a click on each posted notification opens
	image *image.RGBA       // icon, decoded for the image-data hint
}

// Post shows a notification through org.freedesktop.Notifications with a
// default action, which the notification daemon invokes when the person
// clicks the notification: open runs then. It replaces the notification
// numbered replaces, if that is still shown.
func (d *Desktop) Post(replaces uint32, title, message string, open func()) (uint32, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	n, err := d.busLocked()
	if err != nil {
		return 0, fmt.Errorf("showing a notification: %w", err)
	}
	note := fdo.Notification{
		AppName:       d.appName,
		ReplacesID:    replaces,
		Summary:       title,
		Body:          message,
		Actions:       []fdo.Action{fdo.NewDefaultAction("Review")},
		ExpireTimeout: fdo.ExpireTimeoutSetByNotificationServer,
	}
	note.SetUrgency(fdo.UrgencyNormal)
	if d.image != nil {
		note.AddHint(fdo.HintImageDataRGBA(d.image))
	}
	id, err := n.SendNotification(note)
	if err != nil {
		return 0, fmt.Errorf("showing a notification: %w", err)
	}
	if replaces != 0 && replaces != id {
		delete(d.opens, replaces)
	}
	if open != nil {
		d.opens[id] = open
	} else {
		delete(d.opens, id)
	}
	return id, nil
}

// Withdraw closes a notification Post showed.
func (d *Desktop) Withdraw(id uint32) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.opens, id)
	n, err := d.busLocked()
	if err != nil {
		return fmt.Errorf("withdrawing a notification: %w", err)
	}
	if _, err := n.CloseNotification(id); err != nil {
		return fmt.Errorf("withdrawing a notification: %w", err)
	}
	return nil
}

// busLocked connects to the session bus the first time, with a connection
// of its own that listens for clicks on Countersign's notifications.
func (d *Desktop) busLocked() (fdo.Notifier, error) {
	if d.fdo != nil {
		return d.fdo, nil
	}
	conn, err := dbus.ConnectSessionBus()
	if err != nil {
		return nil, err
	}
	n, err := fdo.New(conn,
		fdo.WithLogger(log.New(io.Discard, "", 0)),
		fdo.WithOnAction(d.invoked),
		fdo.WithOnClosed(func(s *fdo.NotificationClosedSignal) {
			d.mu.Lock()
			delete(d.opens, s.ID)
			d.mu.Unlock()
		}))
	if err != nil {
		conn.Close()
		return nil, err
	}
	if d.opens == nil {
		d.opens = map[uint32]func(){}
	}
	if len(d.icon) > 0 && d.image == nil {
		d.image = toRGBA(d.icon)
	}
	d.fdo = n
	return n, nil
}

// invoked runs the open function of a clicked notification.
func (d *Desktop) invoked(s *fdo.ActionInvokedSignal) {
	d.mu.Lock()
	open := d.opens[s.ID]
	d.mu.Unlock()
	if open != nil && s.ActionKey == "default" {
		go open()
	}
}

// toRGBA decodes a PNG for the image-data hint; nil if it is not one.
func toRGBA(b []byte) *image.RGBA {
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		return nil
	}
	rgba := image.NewRGBA(img.Bounds())
	draw.Draw(rgba, rgba.Bounds(), img, img.Bounds().Min, draw.Src)
	return rgba
}
