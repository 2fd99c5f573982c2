// Package config reads and writes Countersign's settings file: which
// upstream servers to offer, the loopback port and the approval timeout.
// Errors name the field, and the line for syntax errors.
package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"time"
)

// DefaultPort is the loopback port the relay listens on unless set.
const DefaultPort = 39217

// Transports an upstream server can use.
const (
	TransportStreamableHTTP = "streamable-http"
	TransportSSE            = "sse"
	TransportStdio          = "stdio"
)

// Config is the settings file.
type Config struct {
	Port            int      `json:"port,omitempty"`
	ApprovalTimeout Duration `json:"approvalTimeout,omitempty"`
	// AllowedOrigins lists browser origins allowed to call the relay.
	AllowedOrigins []string `json:"allowedOrigins,omitempty"`
	Servers        []Server `json:"servers"`
}

// Server is one upstream MCP server.
type Server struct {
	ID        string            `json:"id"`
	Name      string            `json:"name,omitempty"`
	Transport string            `json:"transport"`
	URL       string            `json:"url,omitempty"`
	Command   string            `json:"command,omitempty"`
	Args      []string          `json:"args,omitempty"`
	Env       map[string]string `json:"env,omitempty"`
}

// DisplayName is the name shown to the person.
func (s Server) DisplayName() string {
	if s.Name != "" {
		return s.Name
	}
	return s.ID
}

// Duration is a time.Duration written as "5m" in JSON.
type Duration time.Duration

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON reads a string such as "90s" or "5m".
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errors.New(`want a duration such as "5m"`)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf(`want a duration such as "5m", got %q`, s)
	}
	*d = Duration(v)
	return nil
}

// DefaultPath is the settings file in the OS config directory.
func DefaultPath() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("finding the config directory: %w", err)
	}
	return filepath.Join(dir, "Countersign", "settings.json"), nil
}

// Load reads the settings file. A missing file gives the defaults.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		c := &Config{}
		c.setDefaults()
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading settings: %w", err)
	}
	c, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("settings %s: %w", path, err)
	}
	return c, nil
}

// Parse reads and validates settings.
func Parse(b []byte) (*Config, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var c Config
	if err := dec.Decode(&c); err != nil {
		return nil, describe(b, err)
	}
	if dec.More() {
		return nil, errors.New("data after the settings object")
	}
	c.setDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

func (c *Config) setDefaults() {
	if c.Port == 0 {
		c.Port = DefaultPort
	}
	if c.ApprovalTimeout == 0 {
		c.ApprovalTimeout = Duration(5 * time.Minute)
	}
}

// describe turns a decoding error into one that names the line or field.
func describe(b []byte, err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Errorf("line %d: %v", lineOf(b, se.Offset), se)
	case errors.As(err, &te):
		return fmt.Errorf("line %d: %s: want %s, got %s", lineOf(b, te.Offset), te.Field, te.Type, te.Value)
	}
	return err
}

func lineOf(b []byte, offset int64) int {
	if offset > int64(len(b)) {
		offset = int64(len(b))
	}
	return bytes.Count(b[:offset], []byte("\n")) + 1
}

var idPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// Validate checks every field and names the first bad one.
func (c *Config) Validate() error {
	if c.Port < 1 || c.Port > 65535 {
		return fmt.Errorf("port: %d is not a TCP port", c.Port)
	}
	if t := time.Duration(c.ApprovalTimeout); t < 10*time.Second || t > 24*time.Hour {
		return fmt.Errorf("approvalTimeout: %v is outside 10s to 24h", t)
	}
	seen := map[string]bool{}
	for i, s := range c.Servers {
		field := fmt.Sprintf("servers[%d]", i)
		if !idPattern.MatchString(s.ID) {
			return fmt.Errorf("%s.id: %q must be lower-case letters, digits and dashes", field, s.ID)
		}
		if seen[s.ID] {
			return fmt.Errorf("%s.id: %q is used twice", field, s.ID)
		}
		seen[s.ID] = true
		switch s.Transport {
		case TransportStreamableHTTP, TransportSSE:
			u, err := url.Parse(s.URL)
			if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				return fmt.Errorf("%s.url: %q is not an http(s) URL", field, s.URL)
			}
			if s.Command != "" {
				return fmt.Errorf("%s.command: only stdio servers have a command", field)
			}
		case TransportStdio:
			if s.Command == "" {
				return fmt.Errorf("%s.command: a stdio server needs a command", field)
			}
			if s.URL != "" {
				return fmt.Errorf("%s.url: a stdio server has no URL", field)
			}
		default:
			return fmt.Errorf("%s.transport: %q is not one of streamable-http, sse, stdio", field, s.Transport)
		}
	}
	return nil
}

// Server returns the server with the given id.
func (c *Config) Server(id string) (Server, bool) {
	for _, s := range c.Servers {
		if s.ID == id {
			return s, true
		}
	}
	return Server{}, false
}
