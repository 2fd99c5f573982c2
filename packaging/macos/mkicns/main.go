// Command mkicns makes the macOS app icon (an .icns file) from the same
// PNG the other platforms use (assets/icon.png):
//
//	go run ./packaging/macos/mkicns -o Countersign.icns assets/icon.png
//
// An .icns file is the magic "icns", the file's total length (4 bytes, big
// endian), then chunks: a 4-byte type, the chunk's length including its
// 8-byte header, and the data. Every chunk written here holds a PNG, in
// the types macOS 10.7 and later read as PNG (the same set iconutil
// writes for an .iconset).
package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/png"
	"io"
	"os"

	"golang.org/x/image/draw"
)

// chunk is one icon in the file: its type and its edge in pixels.
type chunk struct {
	Type string
	Size int
}

// chunks are the icon types written, 16 to 1024 pixels (the @2x types hold
// the same pixels as the next size up, as iconutil does).
var chunks = []chunk{
	{"icp4", 16},
	{"icp5", 32},
	{"ic11", 32}, // 16@2x
	{"ic12", 64}, // 32@2x
	{"ic07", 128},
	{"ic13", 256}, // 128@2x
	{"ic08", 256},
	{"ic14", 512}, // 256@2x
	{"ic09", 512},
	{"ic10", 1024}, // 512@2x
}

func main() {
	out := flag.String("o", "", "the .icns file to write")
	flag.Parse()
	if *out == "" || flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: mkicns -o Countersign.icns icon.png")
		os.Exit(2)
	}
	if err := run(flag.Arg(0), *out); err != nil {
		fmt.Fprintln(os.Stderr, "mkicns:", err)
		os.Exit(1)
	}
}

func run(src, dst string) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	b, err := Encode(img)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o644)
}

// Encode returns an .icns file holding img scaled to every size in chunks.
// img must be square.
func Encode(img image.Image) ([]byte, error) {
	r := img.Bounds()
	if r.Dx() != r.Dy() || r.Dx() == 0 {
		return nil, fmt.Errorf("icon is %dx%d; it must be square", r.Dx(), r.Dy())
	}
	var body bytes.Buffer
	for _, c := range chunks {
		dst := image.NewNRGBA(image.Rect(0, 0, c.Size, c.Size))
		draw.CatmullRom.Scale(dst, dst.Bounds(), img, r, draw.Src, nil)
		var p bytes.Buffer
		if err := png.Encode(&p, dst); err != nil {
			return nil, err
		}
		writeHeader(&body, c.Type, 8+p.Len())
		body.Write(p.Bytes())
	}
	var file bytes.Buffer
	writeHeader(&file, "icns", 8+body.Len())
	file.Write(body.Bytes())
	return file.Bytes(), nil
}

func writeHeader(w io.Writer, typ string, n int) {
	var h [8]byte
	copy(h[:4], typ)
	binary.BigEndian.PutUint32(h[4:], uint32(n))
	w.Write(h[:])
}

// Chunk is one icon read back from an .icns file.
type Chunk struct {
	Type string
	Data []byte
}

// Decode splits an .icns file into its chunks, checking every length.
func Decode(b []byte) ([]Chunk, error) {
	if len(b) < 8 || string(b[:4]) != "icns" {
		return nil, errors.New("not an icns file")
	}
	if n := binary.BigEndian.Uint32(b[4:8]); uint64(n) != uint64(len(b)) {
		return nil, fmt.Errorf("header says %d bytes, file has %d", n, len(b))
	}
	var out []Chunk
	for rest := b[8:]; len(rest) > 0; {
		if len(rest) < 8 {
			return nil, errors.New("truncated chunk header")
		}
		n := binary.BigEndian.Uint32(rest[4:8])
		if n < 8 || uint64(n) > uint64(len(rest)) {
			return nil, fmt.Errorf("chunk %q has length %d, %d bytes left", rest[:4], n, len(rest))
		}
		out = append(out, Chunk{Type: string(rest[:4]), Data: rest[8:n]})
		rest = rest[n:]
	}
	return out, nil
}
