package config

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// CurrentVersion is the settings schema version this build writes. Version 1
// is the original file, which had no "version" field.
const CurrentVersion = 2

// probeVersion finds the settings version: 1 when the field is absent.
func probeVersion(b []byte) (int, error) {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(b, &probe); err != nil {
		// Not a JSON object: the strict walk names the problem and its line.
		return 0, walkErr(b)
	}
	raw, ok := probe["version"]
	if !ok {
		return 1, nil
	}
	v, err := strconv.Atoi(string(raw))
	if err != nil {
		return 0, walkErr(b)
	}
	if v == 1 || v == CurrentVersion {
		return v, nil
	}
	fe := &FieldError{Path: "version", Msg: fmt.Sprintf("settings version %d is not one this Countersign understands (1 to %d)", v, CurrentVersion)}
	if v > CurrentVersion {
		fe.Msg = fmt.Sprintf("settings version %d is newer than this Countersign understands (up to %d); update Countersign", v, CurrentVersion)
	}
	s := newSchema(b)
	if err := s.check(reflect.TypeFor[Config](), "settings"); err != nil {
		return 0, err
	}
	return 0, s.locate(fe)
}

// walkErr reports the first problem the strict walk finds in b.
func walkErr(b []byte) error {
	if err := newSchema(b).check(reflect.TypeFor[Config](), "settings"); err != nil {
		return err
	}
	return &FieldError{Line: 1, Msg: "not a settings object"}
}

// configV1 is the settings file before versioning.
type configV1 struct {
	// Version may be written as 1 explicitly.
	Version         int        `json:"version,omitempty"`
	Port            int        `json:"port,omitempty"`
	ApprovalTimeout Duration   `json:"approvalTimeout,omitempty"`
	AllowedOrigins  []string   `json:"allowedOrigins,omitempty"`
	Servers         []serverV1 `json:"servers"`
}

type serverV1 struct {
	ID        string            `json:"id"`
	Name      string            `json:"name,omitempty"`
	Transport string            `json:"transport"`
	URL       string            `json:"url,omitempty"`
	Command   string            `json:"command,omitempty"`
	Args      []string          `json:"args,omitempty"`
	Env       map[string]string `json:"env,omitempty"`
}

// migrateV1 turns a version 1 file into the current version. Every version 1
// server is a custom server (catalog kinds did not exist); the new settings
// take their defaults.
func migrateV1(old *configV1) *Config {
	c := &Config{
		Version:         CurrentVersion,
		Port:            old.Port,
		ApprovalTimeout: old.ApprovalTimeout,
		AllowedOrigins:  old.AllowedOrigins,
		Servers:         make([]Server, 0, len(old.Servers)),
	}
	for _, s := range old.Servers {
		c.Servers = append(c.Servers, Server{
			ID: s.ID, Name: s.Name, Transport: s.Transport, URL: s.URL,
			Command: s.Command, Args: s.Args, Env: s.Env,
		})
	}
	return c
}

// hintV1 explains a current-version field found in a file without a version.
func hintV1(path, key string) string {
	var t reflect.Type
	switch {
	case path == "":
		t = reflect.TypeFor[Config]()
	case strings.HasPrefix(path, "servers[") && !strings.Contains(path, "."):
		t = reflect.TypeFor[Server]()
	default:
		return ""
	}
	if _, ok := jsonFields(t)[key]; ok {
		return fmt.Sprintf(`%s is a settings version %d field: add "version": %d`, key, CurrentVersion, CurrentVersion)
	}
	return ""
}
