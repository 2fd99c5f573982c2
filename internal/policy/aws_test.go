package policy

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/countersign/countersign/internal/catalog"
)

// awsWrite is the AWS server with write tools on, so the checks below are
// about targets, not about read-only.
var awsWrite = awsParams(map[string]string{"region": "Europe (Ireland)", "write": "true", "account": "111122223333", "role": "ReadOnly"})

// awsParams adds an IAM Identity Center to AWS parameters.
func awsParams(m map[string]string) map[string]string {
	out := map[string]string{"ssoStartUrl": "https://d-1234567890.awsapps.com/start", "ssoRegion": "eu-west-1"}
	for k, v := range m {
		out[k] = v
	}
	return out
}

func TestAWSTargets(t *testing.T) {
	p := newPolicy(t, "aws", awsWrite, map[catalog.Kind][]string{
		catalog.KindAWSAccount: {"111122223333"},
		catalog.KindAWSRegion:  {"eu-*"},
	})
	cmd := func(c string) string {
		b, _ := json.Marshal(map[string]string{"cli_command": c})
		return string(b)
	}
	runChecks(t, p, []checkCase{
		{name: "no --region runs in the server's Region", tool: "aws___call_aws", args: cmd("aws s3 ls"),
			action: ActionReview, targets: []string{"eu-west-1", "111122223333"}},
		{name: "a named Region in the allowlist", tool: "aws___call_aws", args: cmd("aws ec2 describe-instances --region eu-west-2"),
			action: ActionReview, targets: []string{"eu-west-2", "111122223333"}},
		{name: "--region= form", tool: "aws___call_aws", args: cmd("aws ec2 describe-vpcs --region=us-east-1"),
			action: ActionDeny, targets: []string{"us-east-1", "111122223333"}, reasonHas: "us-east-1"},
		{name: "an ARN in another account", tool: "aws___call_aws",
			args:   cmd("aws sts assume-role --role-arn arn:aws:iam::999988887777:role/Admin --role-session-name x"),
			action: ActionDeny, targets: []string{"eu-west-1", "999988887777", "111122223333"}, reasonHas: "999988887777"},
		{name: "an ARN in an allowed account and Region", tool: "aws___call_aws",
			args:   cmd("aws lambda get-function --function-name arn:aws:lambda:eu-west-1:111122223333:function:pay"),
			action: ActionReview, targets: []string{"eu-west-1", "111122223333"}},
		{name: "an ARN in a Region outside the allowlist", tool: "aws___call_aws",
			args:   cmd("aws lambda get-function --region eu-west-1 --function-name arn:aws:lambda:us-west-2:111122223333:function:pay"),
			action: ActionDeny, targets: []string{"eu-west-1", "111122223333", "us-west-2"}},
		{name: "a Region that is not a Region", tool: "aws___call_aws", args: cmd("aws s3 ls --region $(whoami)"),
			action: ActionDeny, targets: []string{"111122223333"}, reasonHas: "did not give a valid AWS Region"},
		{name: "managed policy ARNs name no account", tool: "aws___call_aws",
			args:   cmd("aws iam get-policy --policy-arn arn:aws:iam::aws:policy/ReadOnlyAccess"),
			action: ActionReview, targets: []string{"eu-west-1", "111122223333"}},
		{name: "a script names its Regions and ARNs, and may reach more", tool: "aws___run_script",
			args:   `{"script":"import boto3\ns = boto3.client('s3', region_name='eu-west-2')\ns.get_bucket_policy(Bucket='arn:aws:s3:eu-west-2:111122223333:accesspoint/x')"}`,
			action: ActionReview, targets: []string{"111122223333", "eu-west-2"}, unknown: true, unknownHas: "a script can reach"},
		{name: "documentation names no target", tool: "aws___search_documentation", args: `{"search_phrase":"S3 bucket naming"}`,
			action: ActionReview},
		{name: "an unknown tool is scanned for ARNs", tool: "aws___new_tool", args: `{"nested":{"arn":"arn:aws:sqs:eu-west-1:999988887777:q"}}`,
			action: ActionDeny, targets: []string{"999988887777", "eu-west-1"}, unknown: true},
	})
}

// The chosen account is a target of every AWS API call, so an account
// allowlist limits which account the person's role may act in.
func TestAWSChosenAccountOutsideAllowlist(t *testing.T) {
	p := newPolicy(t, "aws", awsWrite, map[catalog.Kind][]string{
		catalog.KindAWSAccount: {"444455556666"},
		catalog.KindAWSRegion:  {"*"},
	})
	d := p.Check(Call{Tool: "aws___call_aws", Arguments: json.RawMessage(`{"cli_command":"aws s3 ls"}`)})
	if d.Action != ActionDeny || !strings.Contains(d.Reason, "111122223333") {
		t.Fatalf("%v (%s)", d.Action, d.Reason)
	}
	none := newPolicy(t, "aws", awsParams(map[string]string{"write": "true"}), map[catalog.Kind][]string{catalog.KindAWSRegion: {"*"}})
	d = none.Check(Call{Tool: "aws___call_aws", Arguments: json.RawMessage(`{"cli_command":"aws s3 ls"}`)})
	if !d.TargetUnknown || !strings.Contains(d.Reason, "no AWS account is chosen yet") {
		t.Fatalf("without a chosen account: %v (%s)", d.Action, d.Reason)
	}
}

func TestAWSEmptyAllowlistFailsClosed(t *testing.T) {
	p := newPolicy(t, "aws", awsWrite, nil)
	d := p.Check(Call{Tool: "aws___call_aws", Arguments: json.RawMessage(`{"cli_command":"aws s3 ls"}`)})
	if d.Action != ActionDeny {
		t.Fatalf("with no Regions allowed: %v (%s)", d.Action, d.Reason)
	}
}

func TestAWSReadOnlyByDefault(t *testing.T) {
	allow := map[catalog.Kind][]string{catalog.KindAWSRegion: {"*"}}
	allow[catalog.KindAWSAccount] = []string{"*"}
	ro := newPolicy(t, "aws", awsParams(nil), allow)
	if !ro.ReadOnlyTools() {
		t.Fatal("AWS is not read-only by default")
	}
	call := Call{Tool: "aws___call_aws", Arguments: json.RawMessage(`{"cli_command":"aws s3 rb s3://x"}`)}
	if d := ro.Check(call); d.Action != ActionDeny || !strings.Contains(d.Reason, "read-only") {
		t.Fatalf("a tool not marked read-only: %v (%s)", d.Action, d.Reason)
	}
	call.ReadOnly = true
	if d := ro.Check(call); d.Action != ActionReview {
		t.Fatalf("a tool marked read-only: %v (%s)", d.Action, d.Reason)
	}
	rw := newPolicy(t, "aws", awsParams(map[string]string{"write": "true"}), allow)
	call.ReadOnly = false
	if d := rw.Check(call); d.Action != ActionReview || rw.ReadOnlyTools() {
		t.Fatalf("with write tools on: %v (%s)", d.Action, d.Reason)
	}
	// GitHub's read-only is its own endpoint, not the hint.
	if newPolicy(t, "github", nil, nil).ReadOnlyTools() {
		t.Fatal("github hides by hint")
	}

	list := `{"tools":[` +
		`{"name":"aws___search_documentation","annotations":{"readOnlyHint":true}},` +
		`{"name":"aws___call_aws","annotations":{"readOnlyHint":false}},` +
		`{"name":"aws___run_script"},` +
		`{"name":"shouty","annotations":{"ReadOnlyHint":true}},` +
		`{"name":"stringy","annotations":{"readOnlyHint":"true"}}` +
		`],"nextCursor":"c"}`
	out, err := FilterTools([]byte(list), ro.HiddenTool)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"tools":[{"name":"aws___search_documentation","annotations":{"readOnlyHint":true}}],"nextCursor":"c"}`; string(out) != want {
		t.Fatalf("read-only listing:\n%s\nwant\n%s", out, want)
	}
	out, err = FilterTools([]byte(list), rw.HiddenTool)
	if err != nil || string(out) != list {
		t.Fatalf("with write tools on the listing changed: %s, %v", out, err)
	}
}
