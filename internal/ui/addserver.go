package ui

import (
	"context"
	"slices"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/countersign/countersign/internal/app"
)

// addServer is the settings window's panel for adding a server from the
// catalog: first the list of servers Countersign knows, then a form for the
// chosen one's parameters, each checked as it is typed.
type addServer struct {
	s    *settingsWindow
	view *fyne.Container // what the Servers tab shows while adding

	choices []app.CatalogChoice
	chosen  app.CatalogChoice
	name    *widget.Entry
	values  map[string]func() string // parameter name → its value as entered
	errs    map[string]string        // parameter name → what is wrong with it
	checks  map[string]*widget.Label
	add     *widget.Button
	back    *widget.Button
	why     *widget.Label // why Add is disabled
	// submitting is set while AddServer runs: the form can't be sent again
	// or left until it answers.
	submitting bool
}

func newAddServer(s *settingsWindow) *addServer {
	return &addServer{s: s, view: container.NewStack()}
}

// open loads the catalog and shows the list of servers to choose from.
func (a *addServer) open() {
	a.view.Objects = []fyne.CanvasObject{wrapped("Loading the catalog…")}
	a.view.Refresh()
	a.s.showAdding(true)
	svc := a.s.d.o.Settings
	a.s.d.background(func(ctx context.Context) func() {
		cs, err := svc.Catalog(ctx)
		return func() {
			if err != nil {
				a.s.showAdding(false)
				a.s.setStatus("Could not load the catalog: "+err.Error(), widget.DangerImportance)
				return
			}
			a.choices = cs
			a.showChoices()
		}
	})
}

func (a *addServer) close() { a.s.showAdding(false) }

// showChoices lists the catalog: each server with what it is, how it signs
// in, and Choose, or why it cannot be added.
func (a *addServer) showChoices() {
	objs := []fyne.CanvasObject{
		heading("Add a server"),
		wrapped("Choose the service your AI app should reach through Countersign. Every call it makes still waits for your review."),
		widget.NewSeparator(),
	}
	for _, c := range a.choices {
		c := c
		pick := widget.NewButton("Choose", func() { a.showForm(c) })
		card := []fyne.CanvasObject{
			container.NewBorder(nil, nil, nil, pick, heading(oneLine(c.Name, 60))),
			wrapped(oneLine(c.Description, 300)),
		}
		if c.SignIn != "" {
			card = append(card, lowText("Sign-in: "+oneLine(c.SignIn, 120)))
		}
		if c.Unavailable != "" {
			pick.Disable()
			card = append(card, container.NewBorder(nil, nil, widget.NewIcon(theme.InfoIcon()), nil, wrapped(oneLine(c.Unavailable, 300))))
		}
		objs = append(objs, container.NewVBox(card...), widget.NewSeparator())
	}
	back := widget.NewButtonWithIcon("Back to servers", theme.NavigateBackIcon(), a.close)
	a.view.Objects = []fyne.CanvasObject{container.NewBorder(nil, container.NewHBox(back), nil, nil,
		container.NewVScroll(container.NewVBox(objs...)))}
	a.view.Refresh()
}

// showForm asks for the chosen server's name and parameters.
func (a *addServer) showForm(c app.CatalogChoice) {
	a.chosen = c
	a.values = map[string]func() string{}
	a.errs = map[string]string{}
	a.checks = map[string]*widget.Label{}
	a.name = widget.NewEntry()
	a.name.SetPlaceHolder(c.Name)
	a.add = widget.NewButtonWithIcon("Add server", theme.ContentAddIcon(), a.submit)
	a.why = lowText("")

	form := []fyne.CanvasObject{
		heading("Add " + oneLine(c.Name, 60)),
		wrapped(oneLine(c.Description, 300)),
		widget.NewSeparator(),
		widget.NewLabel("Name shown in Countersign (optional)"),
		a.name,
	}
	for _, p := range c.Params {
		form = append(form, a.field(p)...)
	}
	a.back = widget.NewButtonWithIcon("Back", theme.NavigateBackIcon(), a.showChoices)
	bottom := container.NewVBox(widget.NewSeparator(), a.why, container.NewHBox(a.back, a.add))
	a.view.Objects = []fyne.CanvasObject{container.NewBorder(nil, bottom, nil, nil,
		container.NewVScroll(container.NewVBox(form...)))}
	a.view.Refresh()
	a.refreshAdd()
}

// field lays out one parameter: its label, the control that fits its
// kind, its help and, for typed values, the live check.
func (a *addServer) field(p app.ParamField) []fyne.CanvasObject {
	label := p.Label
	if p.Required {
		label += " (required)"
	}
	out := []fyne.CanvasObject{widget.NewLabel(label)}
	name := p.Name
	if p.Locked != "" {
		value := p.Value
		a.values[name] = func() string { return value }
		shown := value
		switch p.Kind {
		case "bool":
			shown = onOff(value == "true")
		case "choice":
			shown = choiceWords(p, value)
		}
		lock := widget.NewLabel(oneLine(shown, 200))
		why := lowText("Locked: " + oneLine(p.Locked, 200))
		return append(out, lock, why)
	}
	switch {
	case p.Kind == "choice":
		words := make([]string, len(p.Choices))
		for i, c := range p.Choices {
			words[i] = choiceWords(p, c)
		}
		sel := widget.NewSelect(words, nil)
		sel.SetSelected(choiceWords(p, p.Default))
		a.values[name] = func() string {
			if i := slices.Index(words, sel.Selected); i >= 0 {
				return p.Choices[i]
			}
			return ""
		}
		out = append(out, sel)
	case p.Kind == "list" && len(p.Choices) > 0:
		// Ticked from the list, in plain words; none ticked is the
		// server's default set.
		words := make([]string, len(p.Choices))
		for i, c := range p.Choices {
			words[i] = choiceWords(p, c)
		}
		defaults := strings.Split(p.Default, ",")
		boxes := make([]fyne.CanvasObject, len(words))
		checks := make([]*widget.Check, len(words))
		for i, w := range words {
			checks[i] = widget.NewCheck(w, nil)
			checks[i].SetChecked(slices.ContainsFunc(defaults, func(d string) bool { return strings.TrimSpace(d) == p.Choices[i] }))
			boxes[i] = checks[i]
		}
		a.values[name] = func() string {
			var ids []string
			for i, c := range checks {
				if c.Checked {
					ids = append(ids, p.Choices[i])
				}
			}
			return strings.Join(ids, ",")
		}
		out = append(out, container.NewGridWithColumns(3, boxes...))
	case p.Kind == "bool":
		chk := widget.NewCheck("On", nil)
		chk.SetChecked(p.Default == "true")
		a.values[name] = func() string {
			if chk.Checked {
				return "true"
			}
			return "false"
		}
		out = append(out, chk)
	default: // "text" and "list"
		e := widget.NewEntry()
		e.SetText(p.Default)
		check := lowText("")
		a.checks[name] = check
		a.values[name] = func() string { return e.Text }
		e.OnChanged = func(text string) { a.check(p, text) }
		out = append(out, e, check)
		// The rules are help text, whole, not a placeholder cut at the
		// entry's edge that vanishes when typing starts.
		switch {
		case p.Hint != "" && p.Kind == "list":
			out = append(out, lowText("Separate several with commas: "+oneLine(p.Hint, 200)+"."))
		case p.Hint != "" && (p.Name == "organization" || p.Name == "site" || p.Name == "server"):
			out = append(out, lowText("Use "+oneLine(p.Hint, 200)+", or paste its web address."))
		case p.Hint != "":
			out = append(out, lowText("Use "+oneLine(p.Hint, 200)+"."))
		case p.Kind == "list":
			out = append(out, lowText("Separate several with commas."))
		}
		a.check(p, e.Text)
	}
	if p.Help != "" {
		out = append(out, lowText(oneLine(p.Help, 300)))
	}
	return out
}

// check validates a typed value at once, with the catalog's own rules.
func (a *addServer) check(p app.ParamField, text string) {
	label := a.checks[p.Name]
	delete(a.errs, p.Name)
	switch err := a.s.d.o.Settings.CheckServerParam(a.chosen.Kind, p.Name, text); {
	case err != nil:
		a.errs[p.Name] = err.Error()
		label.Importance = widget.DangerImportance
		label.SetText(err.Error())
	case strings.TrimSpace(text) == "" && p.Required:
		a.errs[p.Name] = p.Label + " is required"
		label.Importance = widget.LowImportance
		label.SetText("Required.")
	default:
		label.Importance = widget.LowImportance
		label.SetText("")
	}
	if label.Text == "" {
		label.Hide() // no blank line under a value that checks out
	} else {
		label.Show()
	}
	if a.add != nil {
		a.refreshAdd()
	}
}

// refreshAdd enables Add only when every value checks out, and says what
// is missing otherwise.
func (a *addServer) refreshAdd() {
	if a.submitting {
		return
	}
	a.why.Importance = widget.LowImportance
	for _, p := range a.chosen.Params {
		if _, bad := a.errs[p.Name]; bad {
			// The field says what is wrong, once; here only where to look.
			a.add.Disable()
			a.why.SetText("To add the server, fill in " + p.Label + " above.")
			if a.checks[p.Name] != nil && a.checks[p.Name].Text != "Required." {
				a.why.SetText("To add the server, correct " + p.Label + " above.")
			}
			return
		}
	}
	a.add.Enable()
	a.why.SetText("")
}

// submit adds the server, then goes back to the list with the result.
func (a *addServer) submit() {
	if a.add.Disabled() {
		return
	}
	c := a.chosen
	name := strings.TrimSpace(a.name.Text)
	params := map[string]string{}
	for _, p := range c.Params {
		if p.Locked == "" {
			params[p.Name] = a.values[p.Name]()
		}
	}
	a.submitting = true
	a.add.Disable()
	a.back.Disable()
	a.why.Importance = widget.LowImportance
	a.why.SetText("Adding " + c.Name + "…")
	svc := a.s.d.o.Settings
	a.s.d.background(func(ctx context.Context) func() {
		id, err := svc.AddServer(ctx, c.Kind, name, params)
		return func() {
			a.submitting = false
			a.back.Enable()
			if err != nil {
				a.why.Importance = widget.DangerImportance
				a.why.SetText("Not added: " + err.Error())
				a.add.Enable()
				return
			}
			a.why.Importance = widget.LowImportance
			a.close()
			shown := name
			if shown == "" {
				shown = c.Name
			}
			a.s.setStatus("Added "+shown+". Sign in, then add what it may touch under Allowlists.", widget.SuccessImportance)
			a.s.allowServer = id
			a.s.reload()
		}
	})
}

// choiceWords names a parameter's choice in plain words: regions by name,
// toolsets as words ("pull_requests" → "Pull requests").
func choiceWords(p app.ParamField, choice string) string {
	if label, ok := p.ChoiceLabels[choice]; ok {
		return label
	}
	if p.Name == "region" {
		if name, ok := regionNames[choice]; ok {
			return name
		}
		return choice
	}
	w := strings.NewReplacer("_", " ", "-", " ").Replace(choice)
	if w == "" {
		return w
	}
	return strings.ToUpper(w[:1]) + w[1:]
}

// regionNames are the catalog's regions by the names people know.
var regionNames = map[string]string{
	"eu": "Europe", "us": "United States",
	"us-east-1": "United States (N. Virginia)", "eu-central-1": "Europe (Frankfurt)",
}

// lowText is a wrapped label in the quiet colour, for help and hints.
func lowText(s string) *widget.Label {
	l := wrapped(s)
	l.Importance = widget.LowImportance
	return l
}

func onOff(on bool) string {
	if on {
		return "On"
	}
	return "Off"
}
