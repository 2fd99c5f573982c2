package main

import (
	"bytes"
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

// TestIconFromTheSharedSource makes the .icns from assets/icon.png (the
// icon Windows and Linux use), writes it as the build script does, and
// reads it back: every chunk is a PNG of its type's size, and the lengths
// in the headers add up.
func TestIconFromTheSharedSource(t *testing.T) {
	dst := filepath.Join(t.TempDir(), "Countersign.icns")
	if err := run(filepath.Join("..", "..", "..", "assets", "icon.png"), dst); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{
		"icp4": 16, "icp5": 32, "ic11": 32, "ic12": 64, "ic07": 128,
		"ic13": 256, "ic08": 256, "ic14": 512, "ic09": 512, "ic10": 1024,
	}
	if len(got) != len(want) {
		t.Fatalf("%d chunks, want %d", len(got), len(want))
	}
	for _, c := range got {
		size, ok := want[c.Type]
		if !ok {
			t.Fatalf("unexpected chunk %q", c.Type)
		}
		delete(want, c.Type)
		if !bytes.HasPrefix(c.Data, []byte("\x89PNG\r\n\x1a\n")) {
			t.Fatalf("%s: not PNG data", c.Type)
		}
		img, err := png.Decode(bytes.NewReader(c.Data))
		if err != nil {
			t.Fatalf("%s: %v", c.Type, err)
		}
		if r := img.Bounds(); r.Dx() != size || r.Dy() != size {
			t.Errorf("%s is %dx%d, want %dx%d", c.Type, r.Dx(), r.Dy(), size, size)
		}
		// The icon is not blank after scaling: its centre is opaque.
		if _, _, _, a := img.At(size/2, size/2).RGBA(); a == 0 {
			t.Errorf("%s: centre pixel is transparent", c.Type)
		}
	}
	if len(want) != 0 {
		t.Errorf("missing chunks: %v", want)
	}
}

func TestDecodeRefusesBadLengths(t *testing.T) {
	good := []byte("icns\x00\x00\x00\x10ic07\x00\x00\x00\x08")
	if _, err := Decode(good); err != nil {
		t.Fatalf("minimal file: %v", err)
	}
	for name, b := range map[string][]byte{
		"magic":       []byte("icnz\x00\x00\x00\x10ic07\x00\x00\x00\x08"),
		"file length": []byte("icns\x00\x00\x00\x11ic07\x00\x00\x00\x08"),
		"chunk long":  []byte("icns\x00\x00\x00\x10ic07\x00\x00\x00\x09"),
		"chunk short": []byte("icns\x00\x00\x00\x10ic07\x00\x00\x00\x07"),
		"truncated":   []byte("icns\x00\x00\x00\x0cic07"),
	} {
		if _, err := Decode(b); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
