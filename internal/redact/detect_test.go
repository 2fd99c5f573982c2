package redact

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// found is the comparable part of a Finding in plain text: its kind and the
// exact text it covers.
type found struct{ Kind, Text string }

func foundIn(s string, fs []Finding) []found {
	var out []found
	for _, f := range fs {
		out = append(out, found{f.Kind, s[f.Start:f.End]})
	}
	return out
}

// detectorCase is a text and the findings expected in it.
type detectorCase struct {
	name string
	text string
	want []found
}

func detectorCases(t testing.TB) []detectorCase {
	f := newFakes(1)
	ghp, gho, ghu, ghs, ghr := f.github("ghp"), f.github("gho"), f.github("ghu"), f.github("ghs"), f.github("ghr")
	pat := f.githubPAT()
	akia, asia, awsSecret := f.awsID(), f.awsSTSID(), f.awsSecret()
	azKey, sig := f.azureKey(), f.sasSig()
	atl := f.atlassian()
	bot, user, app, hook := f.slackBot(), f.slackUser(), f.slackApp(), f.slackWebhook()
	jwt := f.jwt()
	entra := f.entraSecret()
	pw, apiKey := f.password(), f.apiKey()
	pkcs8, ec, ssh := pemKey(t, "PRIVATE KEY"), pemKey(t, "EC PRIVATE KEY"), pemKey(t, "OPENSSH PRIVATE KEY")
	pkcs8 = strings.TrimSuffix(pkcs8, "\n")
	ec = strings.TrimSuffix(ec, "\n")
	ssh = strings.TrimSuffix(ssh, "\n")
	visa, mc, mc2, amex, disc := f.card("4", 16), f.card("51", 16), f.card("2221", 16), f.card("37", 15), f.card("6011", 16)
	spaced := visa[:4] + " " + visa[4:8] + " " + visa[8:12] + " " + visa[12:]
	dashed := mc[:4] + "-" + mc[4:8] + "-" + mc[8:12] + "-" + mc[12:]
	amexGrouped := amex[:4] + " " + amex[4:10] + " " + amex[10:]
	truncated := strings.Join(strings.Split(pkcs8, "\n")[:3], "\n")
	ado, adoOld := f.adoPAT(), f.adoLegacyPAT()
	glpat, glRouted, gkey := f.gitlabPAT(), f.gitlabRouted(), f.googleKey()
	stripe, stripeRK := f.stripeLive(), f.stripeRK()
	oaProj, oaOld, ant := f.openAIProject(), f.openAILegacy(), f.anthropicKey()
	npm, pypi, hf, sg := f.npmToken(), f.pypiToken(), f.hfToken(), f.sendgridKey()
	envFile := base64.StdEncoding.EncodeToString([]byte("# deploy settings\nREGION=eu-west-2\nGITHUB_TOKEN=" + ghp + "\n"))
	pwFile := base64.URLEncoding.EncodeToString([]byte("[db]\nhost = db1\npassword = " + pw + "\n"))
	npmrc := base64.RawStdEncoding.EncodeToString([]byte("//registry.npmjs.org/:_authToken=" + npm))
	mime := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("line of a config file\n", 5) + "key: " + gkey + "\n"))
	mime = mime[:76] + "\r\n" + mime[76:152] + "\r\n" + mime[152:]
	twice := base64.StdEncoding.EncodeToString([]byte(envFile))
	dataURL := "data:text/plain;base64," + envFile

	return []detectorCase{
		// GitHub
		{"github classic pat", "export GH_TOKEN=" + ghp, []found{{KindGitHubToken, ghp}}},
		{"github oauth token in prose", "use " + gho + " for the app", []found{{KindGitHubToken, gho}}},
		{"github user-to-server token", "(" + ghu + ")", []found{{KindGitHubToken, ghu}}},
		{"github server-to-server token", `"` + ghs + `"`, []found{{KindGitHubToken, ghs}}},
		{"github refresh token", ghr, []found{{KindGitHubToken, ghr}}},
		{"github fine-grained pat", "token: " + pat, []found{{KindGitHubToken, pat}}},
		{"github token glued to a word is not a token", "xghp_" + ghp[4:], nil},
		{"github token too short", "ghp_" + ghp[4:30], nil},
		// AWS
		{"aws access key id", "aws_access_key_id = " + akia, []found{{KindAWSAccessKey, akia}}},
		{"aws sts key id", "AccessKeyId: " + asia, []found{{KindAWSAccessKey, asia}}},
		{"aws secret paired with key id", akia + "\n" + awsSecret, []found{{KindAWSAccessKey, akia}, {KindAWSSecretKey, awsSecret}}},
		{"aws secret before key id", awsSecret + "," + akia, []found{{KindAWSSecretKey, awsSecret}, {KindAWSAccessKey, akia}}},
		{"git sha near a key id is not its secret", akia + " built from 3f786850e387550fdab836ed7e6dc881de23001b", []found{{KindAWSAccessKey, akia}}},
		{"aws secret by its name", "aws_secret_access_key=" + awsSecret, []found{{KindAWSSecretKey, awsSecret}}},
		{"aws secret by sdk field name", `"SecretAccessKey": "` + awsSecret + `"`, []found{{KindAWSSecretKey, awsSecret}}},
		// Azure
		{
			"azure storage connection string",
			"DefaultEndpointsProtocol=https;AccountName=acct1;AccountKey=" + azKey + ";EndpointSuffix=core.windows.net",
			[]found{{KindAzureStorageKey, azKey}},
		},
		{
			"azure sas url",
			"https://acct1.blob.core.windows.net/c/b.txt?sv=2022-11-02&ss=b&srt=o&sp=r&se=2030-01-01T00:00:00Z&sig=" + sig,
			[]found{{KindAzureSAS, sig}},
		},
		{
			"service bus shared access key",
			"Endpoint=sb://ns1.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=" + azKey[:44],
			[]found{{KindConnectionSecret, azKey[:44]}},
		},
		{"entra client secret", "client_secret=" + entra, []found{{KindAzureClientSecret, entra}}},
		// Atlassian
		{"atlassian api token", "JIRA_API_TOKEN=" + atl, []found{{KindAtlassianToken, atl}}},
		// Slack
		{"slack bot token", "SLACK_BOT_TOKEN=" + bot, []found{{KindSlackToken, bot}}},
		{"slack user token", user + " expires", []found{{KindSlackToken, user}}},
		{"slack app token", "token " + app, []found{{KindSlackToken, app}}},
		{"slack webhook url", "post to " + hook + " now", []found{{KindSlackWebhook, hook}}},
		// JWT
		{"jwt bearer header", "Authorization: Bearer " + jwt, []found{{KindJWT, jwt}}},
		{"jwt in a cookie", "session=" + jwt + "; Path=/", []found{{KindJWT, jwt}}},
		// PEM
		{"pkcs8 private key", "key:\n" + pkcs8 + "\nend", []found{{KindPrivateKey, pkcs8}}},
		{"sec1 ec private key", ec, []found{{KindPrivateKey, ec}}},
		{"openssh private key", ssh, []found{{KindPrivateKey, ssh}}},
		{"private key with escaped newlines", strings.ReplaceAll(pkcs8, "\n", `\n`), []found{{KindPrivateKey, strings.ReplaceAll(pkcs8, "\n", `\n`)}}},
		{"truncated private key", truncated, []found{{KindPrivateKey, truncated}}},
		{"truncated private key before prose", truncated + "\n\nThanks, the team", []found{{KindPrivateKey, truncated}}},
		// Passwords and connection strings
		{"password in env file", "DB_PASSWORD=" + pw + "\nDB_USER=app", []found{{KindPassword, pw}}},
		{"password in yaml", "  password: " + pw + "\n", []found{{KindPassword, pw}}},
		{"password in quoted json text", `{"username":"svc","password":"` + pw + `"}`, []found{{KindPassword, pw}}},
		{"password in escaped json text", `{\"password\":\"` + pw + `\"}`, []found{{KindPassword, pw}}},
		{"password in go code", `pwd := "` + pw + `"`, []found{{KindPassword, pw}}},
		{"password in ado.net string", "Server=tcp:db1.example.net,1433;User ID=app;Password=" + pw + ";Encrypt=True", []found{{KindPassword, pw}}},
		{"password in postgres url", "postgres://app:" + pw + "@db1.internal:5432/orders", []found{{KindPassword, pw}}},
		{"github token as a url user name", "git clone https://" + ghp + "@github.com/o/r.git", []found{{KindGitHubToken, ghp}}},
		{"github token as a url password", "https://x-access-token:" + ghs + "@github.com/o/r", []found{{KindGitHubToken, ghs}}},
		{"password in amqp url", "amqps://guest:" + pw + "@mq.internal/vhost", []found{{KindPassword, pw}}},
		{"passphrase with a space around the equals sign", "passphrase = " + pw, []found{{KindPassword, pw}}},
		// Generic values next to secret-like names
		{"api key assignment", "api_key=" + apiKey, []found{{KindSecret, apiKey}}},
		{"client secret in yaml", "client_secret: " + apiKey, []found{{KindSecret, apiKey}}},
		{"access token in a url query", "https://api.example.com/v1?access_token=" + apiKey + "&page=2", []found{{KindSecret, apiKey}}},
		{"authorization header with an opaque token", "Authorization: token " + apiKey, []found{{KindSecret, apiKey}}},
		{"bearer token in prose", "send Bearer " + apiKey + " with it", []found{{KindSecret, apiKey}}},
		{"x-api-key header", "X-Api-Key: " + apiKey, []found{{KindSecret, apiKey}}},
		// Personal data
		{"ni number", "NI number AB123456C on file", []found{{KindNINumber, "AB123456C"}}},
		{"ni number with spaces", "NINO: JG 10 37 48 A.", []found{{KindNINumber, "JG 10 37 48 A"}}},
		{"visa card", "card " + visa + " exp 12/30", []found{{KindCardNumber, visa}}},
		{"visa card in groups", "card " + spaced, []found{{KindCardNumber, spaced}}},
		{"mastercard with dashes", dashed, []found{{KindCardNumber, dashed}}},
		{"mastercard 2-series", mc2, []found{{KindCardNumber, mc2}}},
		{"amex in 4-6-5 groups", amexGrouped, []found{{KindCardNumber, amexGrouped}}},
		{"discover", "d:" + disc, []found{{KindCardNumber, disc}}},
		// Vendor tokens recognised by their prefix or signature alone
		{"azure devops pat", "az devops login --token " + ado, []found{{KindAzureDevOpsPAT, ado}}},
		{"azure devops pat starting with digits", "9" + ado[1:], []found{{KindAzureDevOpsPAT, "9" + ado[1:]}}},
		{"azure devops legacy pat", "PAT: " + adoOld + "\n", []found{{KindAzureDevOpsPAT, adoOld}}},
		{"azure devops pat as basic auth user", "https://" + adoOld + "@dev.azure.com/org/_git/repo", []found{{KindAzureDevOpsPAT, adoOld}}},
		{"gitlab pat", "glab auth login --token " + glpat, []found{{KindGitLabToken, glpat}}},
		{"gitlab routable pat", "(" + glRouted + ").", []found{{KindGitLabToken, glRouted}}},
		{"gitlab deploy token", "gl" + "dt-" + glpat[6:], []found{{KindGitLabToken, "gl" + "dt-" + glpat[6:]}}},
		{"google api key", "https://maps.googleapis.com/maps/api/geocode/json?key=" + gkey + "&address=x", []found{{KindGoogleAPIKey, gkey}}},
		{"stripe live secret key", "stripe.api_key = '" + stripe + "'", []found{{KindStripeKey, stripe}}},
		{"stripe restricted key", stripeRK, []found{{KindStripeKey, stripeRK}}},
		{"openai project key", "OPENAI=" + oaProj, []found{{KindOpenAIKey, oaProj}}},
		{"openai legacy key", "use " + oaOld + " here", []found{{KindOpenAIKey, oaOld}}},
		{"anthropic key", "x-api-key " + ant, []found{{KindAnthropicKey, ant}}},
		{"npm token", "//registry.npmjs.org/:_authToken=" + npm, []found{{KindNPMToken, npm}}},
		{"pypi token", "[pypi]\n  username = __token__\n  pass = " + pypi, []found{{KindPyPIToken, pypi}}},
		{"hugging face token", "huggingface-cli login --token " + hf, []found{{KindHuggingFaceToken, hf}}},
		{"sendgrid key", "SENDGRID=" + sg + ";", []found{{KindSendGridKey, sg}}},
		// Base64 values that decode to a secret are redacted whole
		{"base64 env file", envFile, []found{{KindGitHubToken, envFile}}},
		{"base64url file with a password", pwFile, []found{{KindPassword, pwFile}}},
		{"unpadded base64 npmrc", npmrc, []found{{KindNPMToken, npmrc}}},
		{"mime base64 with line breaks", mime, []found{{KindGoogleAPIKey, mime}}},
		{"base64 of base64", twice, []found{{KindGitHubToken, twice}}},
		{"data url", dataURL, []found{{KindGitHubToken, envFile}}},
		// Several at once
		{
			"several secrets in one text",
			"gh=" + ghp + " card=" + visa + " key=" + akia,
			[]found{{KindGitHubToken, ghp}, {KindCardNumber, visa}, {KindAWSAccessKey, akia}},
		},
	}
}

func TestScanFindsSecrets(t *testing.T) {
	for _, tc := range detectorCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			got := foundIn(tc.text, Scan(tc.text))
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Scan(%q) mismatch (-want +got):\n%s", tc.text, diff)
			}
		})
	}
}

// nearMisses are texts that look a little like secrets and must be left
// alone: redacting them would damage ordinary tool results.
func nearMisses(t testing.TB) map[string]string {
	f := newFakes(2)
	return map[string]string{
		"git commit sha":             "commit 3f786850e387550fdab836ed7e6dc881de23001b (HEAD -> main)",
		"short sha":                  "fixed in 3f78685, see a1b2c3d",
		"uuid":                       "request 123e4567-e89b-12d3-a456-426614174000 ok",
		"uuid with digit groups":     "id 40000000-4000-4000-8000-400000000000",
		"png image data":             pngBase64(t, 32, 1),
		"iso timestamps":             "created 2024-01-15T10:30:00Z updated 2024-01-15T10:30:00.123456+01:00",
		"unix ms and ns timestamps":  "t=1718000000000 ns=1718000000000000000",
		"numeric ids failing luhn":   "issue 4111111111111112 and order 5500000000000005",
		"long id without an issuer":  "snowflake 1234567890123456789",
		"uk phone number":            "call +44 20 7946 0958 or 020 7946 0958",
		"us phone number":            "call (415) 555-2671 or +1 415 555 2671",
		"international phone":        "+441234567890123",
		"semantic versions":          "upgrade v1.2.3 to 10.4.0-beta.1+build.5",
		"url without credentials":    "https://github.com/DEFRA/ffc-pay/pull/42?tab=files#diff",
		"url with a user only":       "ssh://git@github.com/DEFRA/ffc-pay.git",
		"scp-like git remote":        "git@github.com:DEFRA/ffc-pay.git",
		"url with port":              "http://localhost:8080/api@v2",
		"word password alone":        "Enter your password to continue. The password is required.",
		"password prose after colon": "Password: must be at least 12 characters long",
		"empty password":             "password=\nuser=app",
		"masked password":            "password=****",
		"redacted placeholder":       "password=<redacted>",
		"template placeholder":       "password: ${DB_PASSWORD}\napi_key: {{ .Values.apiKey }}",
		"env reference":              "password: process.env.DB_PASSWORD",
		"code reference":             "password = user_input",
		"function call":              "token = get_token(user)",
		"type annotation":            "password: string;\ntoken: str",
		"comparison":                 `if password == "" { return }`,
		"aws example access key":     "AKIAIOSFODNN7EXAMPLE",
		"aws example secret key":     "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
		"aws arn":                    "arn:aws:iam::123456789012:role/service-role/deploy",
		"secrets manager arn":        "arn:aws:secretsmanager:eu-west-2:123456789012:secret:prod/DbCreds-AbC123",
		"sri digest":                 `integrity="sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="`,
		"container digest":           "ghcr.io/org/app@sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
		"english prose":              "The team reviewed the design. Keys, tokens and secrets are stored in the vault; nothing else is.",
		"json schema mentioning token": `{"type":"object","properties":{"token":{"type":"string","description":"GitHub token"},` +
			`"password":{"type":"string","minLength":8}},"required":["token"]}`,
		"pagination token":         `"nextPageToken": "CiAKGjBpNDd2Nmp2Zml2cXRwYjBpOXA3` + `bTJrZ2w2EgkI0sHiwAYQ0"`,
		"progress token":           `{"_meta":{"progressToken":"a8f3c2d1-7b6e-4f5a-9c8d-1e2f3a4b5c6d"}}`,
		"max tokens":               "max_tokens=4096",
		"token type":               `"token_type": "Bearer"`,
		"public key":               `"public_key": "MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE="`,
		"jira issue key":           `"key": "ABC-123"`,
		"pem header in prose":      "Paste the key that starts with -----BEGIN PRIVATE KEY----- here.",
		"certificate":              "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----",
		"fake jwt-like dotted ids": "eyJhbGciOiJIUzI1NiJ9 alone, and eyJub3RqdW5r.eyJ4Ijox.abc",
		"jwt without alg":          "eyJ0eXAiOiJKV1QifQ.eyJzdWIiOiIxIn0.c2ln",
		"ni prefix not allowed":    "QQ123456C and GB123456A and AO123456B",
		"ni with bad suffix":       "AB123456E",
		"slack placeholder":        "xoxb-xxxxxxxxxxxx-xxxxxxxxxxxx-xxxxxxxxxxxxxxxx",
		"github placeholder":       "ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
		"bearer scheme in prose":   "Use Bearer authentication for the API.",
		"password hash name":       "password_hash_algorithm: bcrypt",
		"key in c++ scope":         "std::string password::value = other;",
		"html password input":      `<input type="password" name="password" autocomplete="current-password">`,
		"base64 blob":              f.azureKey() + f.azureKey(),
		"hex blob":                 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		"decimal numbers":          "pi=3.14159265358979323846 and total=4111111111111111.50",
		// Near the new vendor shapes
		"scikit-learn":             "pip install scikit-learn (not sk-learn); see sk-learn-docs and sk-1234",
		"sendgrid-like words":      "SG.1 and SG.2 were released; SG.abcdefghij.klm",
		"short sk- ids":            "sk-" + f.from(base62, 40) + " has no marker",
		"npm variables":            "npm_config_cache=/tmp/npm npm_package_version=1.2.3 npm_lifecycle_event=test",
		"hugging face functions":   "from huggingface_hub import hf_hub_download; hf_transfer=1",
		"gitlab placeholder":       "glpat-xxxxxxxxxxxxxxxxxxxx and gl-matrix and glpat-",
		"google prefix alone":      "AIza and AIzaSy are prefixes",
		"pypi prefix alone":        "tokens start pypi-AgEIcHlwaS5vcmc and go on",
		"stripe test key":          "sk_test_" + f.from(base62, 24),
		"stripe prefix alone":      "rk_live_ and sk_live_",
		"sha-256 hex":              "sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
		"52 hex characters":        "3f786850e387550fdab836ed7e6dc881de23001b3f786850e387",
		"upper-case base32 secret": "otpauth secret " + f.from(base32, 52),
		"84 random characters":     f.from(base62, 84),
		"52 lower-case letters":    strings.Repeat("abcdefghijklmnopqrstuvwxyz", 2),
		"github graphql cursor":    "Y3Vyc29yOnYyOpK5MjAyNC0wMS0xNVQxMDozMDowMCswMDowMM4AAAAB",
		"json cursor":              base64.StdEncoding.EncodeToString([]byte(`{"offset":100,"id":"123e4567-e89b-12d3-a456-426614174000"}`)),
		"base64 prose":             base64.StdEncoding.EncodeToString([]byte("Hello, world! The quarterly report is attached; totals are in the second tab.")),
		"base64 random bytes":      base64.StdEncoding.EncodeToString(f.bytes(300)),
		"long identifiers":         "getUserAccessTokenForRepository and /usr/local/share/ca-certificates",
	}
}

func TestScanIgnoresNearMisses(t *testing.T) {
	for name, text := range nearMisses(t) {
		t.Run(name, func(t *testing.T) {
			if got := Scan(text); len(got) != 0 {
				t.Errorf("Scan(%q) = %v, want no findings", text, foundIn(text, got))
			}
		})
	}
}

func TestNINumberPrefixRules(t *testing.T) {
	tests := []struct {
		prefix string
		valid  bool
	}{
		{"AB", true}, {"JG", true}, {"ZY", true}, {"OA", true},
		{"DA", false}, {"FA", false}, {"IA", false}, {"QA", false}, {"UA", false}, {"VA", false},
		{"AD", false}, {"AF", false}, {"AI", false}, {"AQ", false}, {"AU", false}, {"AV", false}, {"AO", false},
		{"BG", false}, {"GB", false}, {"NK", false}, {"KN", false}, {"TN", false}, {"NT", false}, {"ZZ", false},
	}
	for _, tc := range tests {
		for _, form := range []string{tc.prefix + "123456C", tc.prefix + " 12 34 56 C"} {
			if got := len(Scan(form)) == 1; got != tc.valid {
				t.Errorf("Scan(%q) found=%v, want %v", form, got, tc.valid)
			}
		}
	}
}

func TestCardIssuers(t *testing.T) {
	f := newFakes(3)
	tests := []struct {
		name   string
		prefix string
		length int
		want   bool
	}{
		{"visa 13", "4", 13, true},
		{"visa 19", "4", 19, true},
		{"visa wrong length", "4", 15, false},
		{"mastercard 55", "55", 16, true},
		{"mastercard 2720", "2720", 16, true},
		{"not mastercard 2721", "2721", 16, false},
		{"amex 34", "34", 15, true},
		{"amex wrong length", "34", 16, false},
		{"discover 65", "65", 16, true},
		{"discover 644", "644", 19, true},
		{"jcb", "3530", 16, true},
		{"diners", "36", 14, true},
		{"unionpay", "62", 19, true},
		{"maestro", "6759", 13, true},
		{"no issuer 1", "1", 16, false},
		{"no issuer 7", "7", 16, false},
		{"no issuer 9", "9", 16, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := f.card(tc.prefix, tc.length)
			if got := len(Scan("no. "+n)) == 1; got != tc.want {
				t.Errorf("Scan(%q) found=%v, want %v", n, got, tc.want)
			}
			bad := n[:len(n)-1] + string('0'+(n[len(n)-1]-'0'+1)%10)
			if got := Scan("no. " + bad); len(got) != 0 {
				t.Errorf("Scan(%q) found a number failing Luhn", bad)
			}
		})
	}
}

func TestKeyClasses(t *testing.T) {
	tests := []struct {
		key  string
		want keyClass
	}{
		{"password", clsPassword},
		{"DB_PASSWORD", clsPassword},
		{"dbPassword", clsPassword},
		{"mysqlpassword", clsPassword},
		{"passwd", clsPassword},
		{"irc_pass", clsPassword},
		{"bypass", clsNone},
		{"password_hash", clsNone},
		{"passwordPolicy", clsNone},
		{"secret", clsGeneric},
		{"client_secret", clsGeneric},
		{"clientSecret", clsGeneric},
		{"AWS_SECRET_ACCESS_KEY", clsAWSSecret},
		{"SecretAccessKey", clsAWSSecret},
		{"aws_secret_key", clsAWSSecret},
		{"secret_key", clsGeneric},
		{"api_key", clsGeneric},
		{"apiKey", clsGeneric},
		{"APIKey", clsGeneric},
		{"APIKEY", clsGeneric},
		{"x-api-key", clsGeneric},
		{"Ocp-Apim-Subscription-Key", clsGeneric},
		{"AccountKey", clsAzureStorage},
		{"SharedAccessKey", clsConnSecret},
		{"SharedAccessKeyName", clsNone},
		{"private_key", clsPrivateKey},
		{"public_key", clsNone},
		{"key", clsNone},
		{"issue_key", clsNone},
		{"projectKey", clsNone},
		{"token", clsGeneric},
		{"access_token", clsGeneric},
		{"accessToken", clsGeneric},
		{"refresh_token", clsGeneric},
		{"id_token", clsGeneric},
		{"GITHUB_TOKEN", clsGeneric},
		{"nextPageToken", clsNone},
		{"pageToken", clsNone},
		{"next_token", clsNone},
		{"progressToken", clsNone},
		{"continuationToken", clsNone},
		{"max_tokens", clsNone},
		{"token_type", clsNone},
		{"tokenUrl", clsNone},
		{"sig", clsSASSig},
		{"connectionString", clsConnString},
		{"ConnectionString", clsConnString},
		{"Authorization", clsAuth},
		{"credentials", clsGeneric},
		{"name", clsNone},
		{"description", clsNone},
		{"data", clsNone},
		{"blob", clsNone},
		{"", clsNone},
		{strings.Repeat("a", 60) + "_password", clsNone},
	}
	for _, tc := range tests {
		if got := classifyKey(tc.key); got != tc.want {
			t.Errorf("classifyKey(%q) = %d, want %d", tc.key, got, tc.want)
		}
	}
}

func TestPreviewNeverHoldsTheSecret(t *testing.T) {
	for _, tc := range detectorCases(t) {
		for _, fd := range Scan(tc.text) {
			v := tc.text[fd.Start:fd.End]
			if strings.Contains(fd.Preview, v) {
				t.Errorf("%s: preview %q holds the value", tc.name, fd.Preview)
			}
			if len(fd.Preview) > 40 {
				t.Errorf("%s: preview %q is long", tc.name, fd.Preview)
			}
			if !strings.Contains(fd.Preview, "…") {
				t.Errorf("%s: preview %q is not masked", tc.name, fd.Preview)
			}
		}
	}
}

func TestPreviewShapes(t *testing.T) {
	f := newFakes(4)
	ghp := f.github("ghp")
	pat := f.githubPAT()
	visa := f.card("4", 16)
	tests := []struct {
		kind, value, want string
	}{
		{KindGitHubToken, ghp, "ghp_…" + ghp[len(ghp)-2:]},
		{KindGitHubToken, pat, "github_pat_…" + pat[len(pat)-2:]},
		{KindCardNumber, visa[:4] + " " + visa[4:8] + " " + visa[8:12] + " " + visa[12:], "…" + visa[12:]},
		{KindPassword, "hunter22", "…"},
		{KindNINumber, "AB123456C", "…"},
		{KindPrivateKey, "-----BEGIN RSA PRIVATE KEY-----\nMII", "BEGIN RSA PRIVATE KEY…"},
	}
	for _, tc := range tests {
		if got := preview(tc.kind, tc.value); got != tc.want {
			t.Errorf("preview(%q, …) = %q, want %q", tc.kind, got, tc.want)
		}
	}
}

func TestRedactReplacesEveryFinding(t *testing.T) {
	for _, tc := range detectorCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			got, counts := Redact(tc.text)
			want := tc.text
			wantCounts := map[string]int{}
			// Replace from the end so earlier offsets stay valid.
			fs := Scan(tc.text)
			for i := len(fs) - 1; i >= 0; i-- {
				want = want[:fs[i].Start] + Marker(fs[i].Kind) + want[fs[i].End:]
				wantCounts[fs[i].Kind]++
			}
			if got != want {
				t.Errorf("Redact(%q)\n got %q\nwant %q", tc.text, got, want)
			}
			if diff := cmp.Diff(wantCounts, counts, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("counts mismatch (-want +got):\n%s", diff)
			}
			if again, c := Redact(got); again != got || c != nil {
				t.Errorf("Redact is not idempotent: %q → %q (%v)", got, again, c)
			}
			for _, w := range tc.want {
				if strings.Contains(got, w.Text) {
					t.Errorf("output still holds %q", w.Text)
				}
			}
		})
	}
}

func TestRedactLeavesCleanTextAlone(t *testing.T) {
	for name, text := range nearMisses(t) {
		got, counts := Redact(text)
		if got != text || counts != nil {
			t.Errorf("%s: Redact changed clean text: %q (%v)", name, got, counts)
		}
	}
}
