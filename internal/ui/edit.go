package ui

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/countersign/countersign/internal/gate"
	"github.com/countersign/countersign/internal/jsonrpc"
)

// editor lets the person change a call's arguments before approving it.
// The text is checked as it is typed: it must be one unambiguous JSON
// object that satisfies the tool's input schema.
type editor struct {
	call     gate.Call
	schema   *jsonschema.Schema // nil when the server gave none, or it could not be used
	noSchema string             // why there is no schema to check against
	original []byte             // the arguments as sent, compacted
	valid    []byte             // the edited arguments, compacted, when they pass
	// hidden holds the secrets shown as marks; nil once shown, or when
	// there are none.
	hidden *hiddenSecrets
	reveal *fyne.Container // says a secret is hidden and offers to show it

	entry   *widget.Entry
	status  *widget.Label
	approve *widget.Button
	content fyne.CanvasObject
}

// newEditor opens an editor on c's arguments; with hide, any secret in them
// is shown as a mark until the person chooses to see it.
func newEditor(c gate.Call, hide bool, onApprove func(args []byte), onCancel func()) *editor {
	e := &editor{call: c}
	e.schema, e.noSchema = schemaOf(c.Info)
	var b bytes.Buffer
	if json.Compact(&b, c.Arguments) == nil {
		e.original = b.Bytes()
	}
	e.entry = widget.NewMultiLineEntry()
	e.entry.TextStyle.Monospace = true
	e.entry.Wrapping = fyne.TextWrapBreak
	text := "{}"
	if len(bytes.TrimSpace(c.Arguments)) > 0 {
		var p bytes.Buffer
		if json.Indent(&p, c.Arguments, "", "  ") == nil {
			text = p.String()
		} else {
			text = string(c.Arguments)
		}
	}
	if h, ok := hideSecrets(c.Arguments); hide && ok {
		e.hidden = &h
		text = h.text
	}
	e.entry.SetText(text)
	e.status = widget.NewLabel("")
	e.status.Wrapping = fyne.TextWrapWord
	e.approve = widget.NewButtonWithIcon("Approve with these arguments", theme.ConfirmIcon(), func() {
		if e.valid == nil {
			return
		}
		args := e.valid
		if bytes.Equal(args, e.original) {
			args = nil // unchanged: run the call as sent
		}
		onApprove(args)
	})
	e.approve.Importance = widget.SuccessImportance
	cancel := widget.NewButton("Cancel", onCancel)
	e.entry.OnChanged = e.check
	e.check(text)

	help := wrapped("Change the values, then approve. The server runs the call with exactly this JSON; " +
		"the audit log keeps both the original and your edit.")
	var top fyne.CanvasObject = help
	if e.hidden != nil {
		note := wrapped("A secret is hidden as [hidden … #1]. It is sent as it was, unless you delete its mark.")
		note.Importance = widget.DangerImportance
		show := widget.NewButtonWithIcon("Show the secret", theme.VisibilityIcon(), e.showSecrets)
		e.reveal = container.NewBorder(nil, nil, widget.NewIcon(secretIcon()), show, note)
		top = container.NewVBox(help, e.reveal)
	}
	e.content = container.NewBorder(top,
		container.NewVBox(e.status, container.NewHBox(layout.NewSpacer(), cancel, container.NewThemeOverride(e.approve, decisionTheme{}))),
		nil, nil, e.entry)
	return e
}

// check validates the text and says what, if anything, is wrong: the
// syntax and the schema here, then Countersign's rules (the call's
// Preview) as they will judge the edit when it is approved.
func (e *editor) check(text string) {
	e.valid = nil
	if e.hidden != nil {
		text = e.hidden.restore(text)
	}
	args, problem := validate(e.schema, text)
	var notes []string
	if problem == "" && e.call.Preview != nil {
		refused, ws := e.call.Preview(args)
		problem = refused
		for _, w := range ws {
			notes = append(notes, w.Text)
		}
	}
	if e.hidden != nil {
		problem = e.hidden.hide(problem)
		for i, n := range notes {
			notes[i] = e.hidden.hide(n)
		}
	}
	switch {
	case problem != "":
		e.status.SetText(visible(problem))
		e.status.Importance = widget.DangerImportance
	case len(notes) > 0:
		status := "Valid: matches the tool's input schema."
		if e.schema == nil {
			status = "Valid JSON. " + e.noSchema
		}
		e.status.SetText(visible(status + " But: " + strings.Join(notes, " ")))
		e.status.Importance = widget.WarningImportance
	case e.schema == nil:
		e.status.SetText("Valid JSON. " + e.noSchema)
		e.status.Importance = widget.WarningImportance
	default:
		e.status.SetText("Valid: matches the tool's input schema.")
		e.status.Importance = widget.SuccessImportance
	}
	e.status.Refresh()
	if problem == "" {
		e.valid = args
		e.approve.Enable()
	} else {
		e.approve.Disable()
	}
}

// showSecrets puts the hidden secrets into the text, keeping the person's
// edits, and stops hiding them.
func (e *editor) showSecrets() {
	if e.hidden == nil {
		return
	}
	text := e.hidden.restore(e.entry.Text)
	e.hidden = nil
	e.reveal.Hide()
	e.entry.SetText(text)
}

// refuse shows why Countersign's rules refused the edit; approving waits
// for the next change.
func (e *editor) refuse(reason string) {
	e.valid = nil
	e.approve.Disable()
	if e.hidden != nil {
		reason = e.hidden.hide(reason)
	}
	e.status.SetText(visible(reason))
	e.status.Importance = widget.DangerImportance
	e.status.Refresh()
}

// validate checks edited arguments and returns them compacted, or a
// sentence saying what is wrong.
func validate(schema *jsonschema.Schema, text string) ([]byte, string) {
	raw := []byte(text)
	if !json.Valid(raw) {
		var v any
		err := json.Unmarshal(raw, &v)
		var se *json.SyntaxError
		if errors.As(err, &se) {
			line := bytes.Count(raw[:min(int(se.Offset), len(raw))], []byte("\n")) + 1
			return nil, fmt.Sprintf("Not valid JSON: line %d: %v.", line, se)
		}
		return nil, "Not valid JSON."
	}
	if err := jsonrpc.CheckUnambiguous(raw); err != nil {
		return nil, "A name appears twice (or twice in different case) in one object: servers may read that differently, so remove one."
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, "Not valid JSON."
	}
	if _, ok := doc.(map[string]any); !ok {
		return nil, "The arguments must be a JSON object: { … }."
	}
	if schema != nil {
		if err := schema.Validate(doc); err != nil {
			return nil, schemaProblem(err)
		}
	}
	var b bytes.Buffer
	json.Compact(&b, raw)
	return b.Bytes(), ""
}

var printer = message.NewPrinter(language.English)

// schemaProblem turns a validation error into plain sentences, one per
// value that is wrong, at most five.
func schemaProblem(err error) string {
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return "Does not match the tool's input schema: " + err.Error()
	}
	var leaves []string
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			at := "/" + strings.Join(e.InstanceLocation, "/")
			if at == "/" {
				at = "the arguments"
			}
			leaves = append(leaves, at+": "+e.ErrorKind.LocalizedString(printer))
			return
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	sort.Strings(leaves)
	if len(leaves) > 5 {
		leaves = append(leaves[:5], fmt.Sprintf("and %d more", len(leaves)-5))
	}
	return "Does not match the tool's input schema: " + oneLine(strings.Join(leaves, "; "), 600) + "."
}

// schemaOf compiles a tool's input schema. Schemas come from servers, so
// nothing outside the schema itself is ever loaded: no files, no network.
func schemaOf(info *gate.ToolInfo) (*jsonschema.Schema, string) {
	if info == nil || len(bytes.TrimSpace(info.InputSchema)) == 0 {
		return nil, "The server gave no input schema for this tool, so only the JSON syntax was checked."
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(info.InputSchema))
	if err != nil {
		return nil, "The server's input schema is not valid JSON, so only the JSON syntax was checked."
	}
	c := jsonschema.NewCompiler()
	c.UseLoader(noLoader{})
	const loc = "urn:countersign:input-schema"
	if err := c.AddResource(loc, doc); err != nil {
		return nil, "The server's input schema could not be used, so only the JSON syntax was checked."
	}
	s, err := c.Compile(loc)
	if err != nil {
		return nil, "The server's input schema could not be used (" + oneLine(err.Error(), 200) + "), so only the JSON syntax was checked."
	}
	return s, ""
}

// noLoader refuses every reference outside the schema.
type noLoader struct{}

func (noLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("not loading %s: schemas may only refer to themselves", url)
}
