package ui

import (
	"context"
	"errors"
	"slices"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/widget"

	"github.com/countersign/countersign/internal/app"
)

// AWSRoleService is what the settings window needs to let the person
// choose the AWS account and role an AWS server's calls use. The app's
// settings service provides it; every method reaches the network and is
// never called on the UI goroutine.
type AWSRoleService interface {
	AWSAccounts(ctx context.Context, serverID string) (app.AWSRoleChoice, error)
	AWSRoles(ctx context.Context, serverID, accountID string) ([]string, error)
	ChooseAWSRole(ctx context.Context, serverID string, account app.AWSAccount, role string) error
}

// awsRoleButton is the card's "Choose account and role…" button, or nil
// when the server does not choose one or the service cannot.
func (s *settingsWindow) awsRoleButton(srv app.ServerStatus) fyne.CanvasObject {
	svc, ok := s.d.o.Settings.(AWSRoleService)
	if !ok || !srv.ChoosesRole {
		return nil
	}
	label := "Choose account and role…"
	if srv.Role != "" {
		label = "Change account or role…"
	}
	b := widget.NewButton(label, func() { s.chooseAWSRole(svc, srv) })
	if srv.Role == "" {
		b.Importance = widget.HighImportance
	}
	return b
}

// chooseAWSRole reads the accounts the person may use, then asks which
// account and role; the roles of an account are read when it is picked.
func (s *settingsWindow) chooseAWSRole(svc AWSRoleService, srv app.ServerStatus) {
	id, name := srv.ID, oneLine(srv.Name, 40)
	s.setNote(id, cardNote{text: "Reading your AWS accounts…", imp: widget.MediumImportance})
	s.d.background(func(ctx context.Context) func() {
		choice, err := svc.AWSAccounts(ctx, id)
		return func() {
			if err != nil {
				s.failNote(id, err)
				return
			}
			delete(s.notes, id)
			s.setServerCards(s.servers)
			s.showAWSRoleDialog(svc, id, name, choice)
		}
	})
}

// failNote shows err on a server's card, with its detail behind a toggle.
func (s *settingsWindow) failNote(id string, err error) {
	n := cardNote{text: err.Error(), imp: widget.DangerImportance}
	var p *app.Problem
	if errors.As(err, &p) {
		n.detail = p.Detail
	}
	s.setNote(id, n)
}

func (s *settingsWindow) showAWSRoleDialog(svc AWSRoleService, id, name string, choice app.AWSRoleChoice) {
	w := s.window()
	if len(choice.Accounts) == 0 {
		dialog.ShowInformation("No AWS accounts", "Your AWS sign-in gives you no account that "+name+" may use here. "+
			"Ask the person who looks after AWS in your organisation.", w)
		return
	}
	labels := make([]string, len(choice.Accounts))
	for i, a := range choice.Accounts {
		labels[i] = oneLine(a.Label, 80)
	}
	roleSel := widget.NewSelect(nil, nil)
	roleSel.PlaceHolder = "Choose an account first"
	roleSel.Disable()
	help := lowText("Every call " + name + " makes runs as this role, and you still approve each one. " +
		"Countersign keeps only the role's short-lived keys, in this computer's keychain, and renews them for you.")
	if choice.Locked != "" {
		help = lowText(choice.Locked)
	}
	var save *widget.Button
	accountSel := widget.NewSelect(labels, nil)
	accountSel.PlaceHolder = "Choose an account"
	loadRoles := func(i int) {
		roleSel.ClearSelected()
		roleSel.Options = nil
		roleSel.PlaceHolder = "Reading roles…"
		roleSel.Disable()
		roleSel.Refresh()
		account := choice.Accounts[i]
		s.d.background(func(ctx context.Context) func() {
			roles, err := svc.AWSRoles(ctx, id, account.ID)
			return func() {
				if accountSel.SelectedIndex() != i {
					return // the person picked another account meanwhile
				}
				switch {
				case err != nil:
					roleSel.PlaceHolder = "Roles could not be read: try again"
				case len(roles) == 0:
					roleSel.PlaceHolder = "No role you may use in this account"
				default:
					roleSel.PlaceHolder = "Choose a role"
					roleSel.Options = roles
					roleSel.Enable()
					if slices.Contains(roles, choice.Role) && account.ID == choice.AccountID {
						roleSel.SetSelected(choice.Role)
					} else if len(roles) == 1 {
						roleSel.SetSelected(roles[0])
					}
				}
				roleSel.Refresh()
			}
		})
	}
	accountSel.OnChanged = func(string) {
		if i := accountSel.SelectedIndex(); i >= 0 {
			loadRoles(i)
		}
		save.Disable()
	}
	roleSel.OnChanged = func(r string) {
		if r != "" {
			save.Enable()
		}
	}
	var d dialog.Dialog
	save = widget.NewButton("Use this role", func() {
		i := accountSel.SelectedIndex()
		role := roleSel.Selected
		if i < 0 || role == "" {
			return
		}
		d.Hide()
		account := choice.Accounts[i]
		s.serverAction(id, "Getting keys for "+role+" in "+oneLine(account.Label, 80)+"…", "",
			name+" now uses the role "+role+" in "+oneLine(account.Label, 80)+".",
			func(ctx context.Context) error { return svc.ChooseAWSRole(ctx, id, account, role) })
	})
	save.Importance = widget.HighImportance
	save.Disable()
	cancel := widget.NewButton("Cancel", func() { d.Hide() })
	form := widget.NewForm(widget.NewFormItem("AWS account", accountSel), widget.NewFormItem("Role", roleSel))
	content := container.NewVBox(form, help, container.NewHBox(cancel, save))
	d = dialog.NewCustomWithoutButtons("Choose the AWS account and role for "+name, content, w)
	d.Resize(fyne.NewSize(560, 300))
	d.Show()
	if i := slices.IndexFunc(choice.Accounts, func(a app.AWSAccount) bool { return a.ID == choice.AccountID }); i >= 0 {
		accountSel.SetSelectedIndex(i)
	} else if len(choice.Accounts) == 1 {
		accountSel.SetSelectedIndex(0)
	}
}
