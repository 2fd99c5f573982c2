package plist

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
	"unicode/utf16"
)

// bplist is a binary property list ("bplist00") being read: a header, the
// objects, a table of their offsets, and a 32-byte trailer.
type bplist struct {
	b          []byte
	offsets    []uint64 // offset of each object
	refSize    int      // bytes in an object reference
	visiting   []bool   // objects on the current path, to refuse cycles
	decodedOps int      // objects decoded, bounded so shared subtrees cannot blow up
}

// maxObjects bounds the objects decoded, counting each time a shared one
// is reached again.
const maxObjects = 100000

// appleEpoch is the reference date of binary plist dates.
var appleEpoch = time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)

func decodeBinary(b []byte) (any, error) {
	if len(b) < 8+32 || string(b[:8]) != "bplist00" {
		return nil, errors.New("binary property list: not bplist00, or too short")
	}
	tr := b[len(b)-32:]
	offSize, refSize := int(tr[6]), int(tr[7])
	numObjects := binary.BigEndian.Uint64(tr[8:16])
	top := binary.BigEndian.Uint64(tr[16:24])
	tableOff := binary.BigEndian.Uint64(tr[24:32])
	end := uint64(len(b) - 32)
	switch {
	case offSize < 1 || offSize > 8 || refSize < 1 || refSize > 8:
		return nil, fmt.Errorf("binary property list: bad integer sizes %d, %d", offSize, refSize)
	case numObjects == 0 || top >= numObjects:
		return nil, errors.New("binary property list: no top object")
	case tableOff < 8 || tableOff > end || numObjects > (end-tableOff)/uint64(offSize):
		return nil, errors.New("binary property list: offset table out of range")
	}
	p := &bplist{b: b[:tableOff], refSize: refSize, offsets: make([]uint64, numObjects), visiting: make([]bool, numObjects)}
	for i := range p.offsets {
		at := tableOff + uint64(i*offSize)
		off := readUint(b[at : at+uint64(offSize)])
		if off < 8 || off >= tableOff {
			return nil, fmt.Errorf("binary property list: object %d lies outside the objects", i)
		}
		p.offsets[i] = off
	}
	return p.object(top, 0)
}

func readUint(b []byte) uint64 {
	var n uint64
	for _, c := range b {
		n = n<<8 | uint64(c)
	}
	return n
}

// take returns n bytes at off, or an error if they run past the objects.
func (p *bplist) take(off, n uint64) ([]byte, error) {
	if off > uint64(len(p.b)) || n > uint64(len(p.b))-off {
		return nil, errors.New("binary property list: an object runs past the end")
	}
	return p.b[off : off+n], nil
}

// count reads an object's length: the marker's low nibble, or for 0xF an
// integer object that follows. It returns the length and where the
// content starts.
func (p *bplist) count(off uint64, low byte) (uint64, uint64, error) {
	if low != 0xF {
		return uint64(low), off + 1, nil
	}
	hdr, err := p.take(off+1, 1)
	if err != nil {
		return 0, 0, err
	}
	if hdr[0]>>4 != 0x1 || hdr[0]&0xF > 3 {
		return 0, 0, errors.New("binary property list: bad length")
	}
	size := uint64(1) << (hdr[0] & 0xF)
	nb, err := p.take(off+2, size)
	if err != nil {
		return 0, 0, err
	}
	n := readUint(nb)
	if n > uint64(len(p.b)) {
		return 0, 0, errors.New("binary property list: a length exceeds the file")
	}
	return n, off + 2 + size, nil
}

func (p *bplist) object(ref uint64, depth int) (any, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("binary property list: nested more than %d deep", maxDepth)
	}
	if ref >= uint64(len(p.offsets)) {
		return nil, fmt.Errorf("binary property list: reference %d to no object", ref)
	}
	if p.decodedOps++; p.decodedOps > maxObjects {
		return nil, errors.New("binary property list: too many objects")
	}
	if p.visiting[ref] {
		return nil, errors.New("binary property list: an object contains itself")
	}
	p.visiting[ref] = true
	defer func() { p.visiting[ref] = false }()
	off := p.offsets[ref]
	m, err := p.take(off, 1)
	if err != nil {
		return nil, err
	}
	marker, low := m[0]>>4, m[0]&0xF
	switch marker {
	case 0x0:
		switch m[0] {
		case 0x08:
			return false, nil
		case 0x09:
			return true, nil
		}
	case 0x1:
		if low > 3 {
			return nil, errors.New("binary property list: integers over 8 bytes are not read")
		}
		nb, err := p.take(off+1, 1<<low)
		if err != nil {
			return nil, err
		}
		// 1, 2 and 4-byte integers are unsigned, 8-byte ones signed:
		// either way they fit an int64.
		return int64(readUint(nb)), nil
	case 0x2:
		switch low {
		case 2:
			nb, err := p.take(off+1, 4)
			if err != nil {
				return nil, err
			}
			return float64(math.Float32frombits(binary.BigEndian.Uint32(nb))), nil
		case 3:
			nb, err := p.take(off+1, 8)
			if err != nil {
				return nil, err
			}
			return math.Float64frombits(binary.BigEndian.Uint64(nb)), nil
		}
	case 0x3:
		if m[0] == 0x33 {
			nb, err := p.take(off+1, 8)
			if err != nil {
				return nil, err
			}
			s := math.Float64frombits(binary.BigEndian.Uint64(nb))
			if math.IsNaN(s) || math.Abs(s) > 1e11 {
				return nil, errors.New("binary property list: a date out of range")
			}
			return appleEpoch.Add(time.Duration(s * float64(time.Second))), nil
		}
	case 0x4, 0x5, 0x6:
		n, start, err := p.count(off, low)
		if err != nil {
			return nil, err
		}
		size := n
		if marker == 0x6 {
			size = 2 * n
		}
		d, err := p.take(start, size)
		if err != nil {
			return nil, err
		}
		switch marker {
		case 0x4:
			return append([]byte(nil), d...), nil
		case 0x5:
			for _, c := range d {
				if c >= 0x80 {
					return nil, errors.New("binary property list: an ASCII string holds a non-ASCII byte")
				}
			}
			return string(d), nil
		}
		u := make([]uint16, n)
		for i := range u {
			u[i] = binary.BigEndian.Uint16(d[2*i:])
		}
		return string(utf16.Decode(u)), nil
	case 0xA, 0xD:
		n, start, err := p.count(off, low)
		if err != nil {
			return nil, err
		}
		refs := n
		if marker == 0xD {
			refs = 2 * n
		}
		if refs > uint64(len(p.b)) {
			return nil, errors.New("binary property list: a collection exceeds the file")
		}
		rb, err := p.take(start, refs*uint64(p.refSize))
		if err != nil {
			return nil, err
		}
		ref := func(i uint64) uint64 { return readUint(rb[i*uint64(p.refSize) : (i+1)*uint64(p.refSize)]) }
		if marker == 0xA {
			a := make([]any, 0, n)
			for i := range n {
				v, err := p.object(ref(i), depth+1)
				if err != nil {
					return nil, err
				}
				a = append(a, v)
			}
			return a, nil
		}
		d := make(map[string]any, n)
		for i := range n {
			k, err := p.object(ref(i), depth+1)
			if err != nil {
				return nil, err
			}
			key, ok := k.(string)
			if !ok {
				return nil, errors.New("binary property list: a dictionary key is not a string")
			}
			if _, dup := d[key]; dup {
				return nil, fmt.Errorf("binary property list: key %q appears twice", truncate(key))
			}
			v, err := p.object(ref(n+i), depth+1)
			if err != nil {
				return nil, err
			}
			d[key] = v
		}
		return d, nil
	}
	return nil, fmt.Errorf("binary property list: object type 0x%02x is not read", m[0])
}
