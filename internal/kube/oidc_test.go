package kube

import (
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

// Secrets planted in the kubeconfigs and the identity provider's answers:
// no error may carry one.
const (
	oidcClientSecret = "cl1ent-s3cret/+=&?"
	oidcRefreshToken = "refr3sh-t0ken-old"
	oidcNewRefresh   = "refr3sh-t0ken-new"
	oidcBodySecret   = "b0dy-s3cret"
)

// testJWT is an unsigned JWT whose payload has that exp (none if zero).
func testJWT(t *testing.T, exp time.Time, subject string) string {
	t.Helper()
	claims := map[string]any{"iss": "https://idp.example", "sub": subject}
	if !exp.IsZero() {
		claims["exp"] = exp.Unix()
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(`{"alg":"RS256","typ":"JWT"}`)) + "." + enc.EncodeToString(payload) + "." + enc.EncodeToString([]byte("sig"))
}

// tokenRequest is a refresh request the fake identity provider received.
type tokenRequest struct {
	form        url.Values
	user, pass  string // basic auth, unescaped
	basic       bool
	contentType string
}

// fakeIdP is an OpenID provider over TLS whose issuer URL has a path: its
// discovery document names its token endpoint, which answers as told.
type fakeIdP struct {
	*httptest.Server
	issuer string
	answer func(tokenRequest) (status int, contentType, body string)

	mu          sync.Mutex
	discoveries int
	requests    []tokenRequest
}

func newFakeIdP(t *testing.T, answer func(tokenRequest) (int, string, string)) *fakeIdP {
	t.Helper()
	idp := &fakeIdP{answer: answer}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /realms/r/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		idp.mu.Lock()
		idp.discoveries++
		idp.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{"issuer": idp.issuer, "token_endpoint": idp.issuer + "/token"})
	})
	mux.HandleFunc("POST /realms/r/token", func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		req := tokenRequest{form: r.PostForm, contentType: r.Header.Get("Content-Type")}
		var user, pass string
		user, pass, req.basic = r.BasicAuth()
		req.user, _ = url.QueryUnescape(user)
		req.pass, _ = url.QueryUnescape(pass)
		idp.mu.Lock()
		idp.requests = append(idp.requests, req)
		idp.mu.Unlock()
		status, contentType, body := idp.answer(req)
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(status)
		io.WriteString(w, body)
	})
	idp.Server = httptest.NewUnstartedServer(mux)
	idp.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes
	idp.StartTLS()
	t.Cleanup(idp.Close)
	idp.issuer = idp.URL + "/realms/r"
	return idp
}

// caData is the IdP's certificate, base64 PEM, for idp-certificate-authority-data.
func (idp *fakeIdP) caData() string {
	return b64(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: idp.Certificate().Raw}))
}

func (idp *fakeIdP) counts() (discoveries, refreshes int) {
	idp.mu.Lock()
	defer idp.mu.Unlock()
	return idp.discoveries, len(idp.requests)
}

// grant answers a refresh with a new id-token and refresh token (JSON).
func grant(idToken, refreshToken string) func(tokenRequest) (int, string, string) {
	return func(tokenRequest) (int, string, string) {
		b, _ := json.Marshal(map[string]any{"access_token": "access", "token_type": "Bearer", "expires_in": 3600,
			"id_token": idToken, "refresh_token": refreshToken})
		return http.StatusOK, "application/json", string(b)
	}
}

// oidcConf is an oidc auth-provider's config for the IdP with that id-token.
func (idp *fakeIdP) oidcConf(idToken string) map[string]string {
	return map[string]string{"idp-issuer-url": idp.issuer + "/", "client-id": "plexus", "client-secret": oidcClientSecret,
		"id-token": idToken, "refresh-token": oidcRefreshToken, "idp-certificate-authority-data": idp.caData(),
		"extra-scopes": "groups"}
}

// writeOIDCKubeconfig writes a kubeconfig (mode 0640) whose current context
// joins cluster "k" and user "u", whose auth-provider has that name and
// config; userKeys are more keys of user "u". Another user and cluster are
// there, unused.
func writeOIDCKubeconfig(t *testing.T, dir, provider string, conf map[string]string, userKeys map[string]any) string {
	t.Helper()
	user := map[string]any{"auth-provider": map[string]any{"name": provider, "config": conf}}
	for k, v := range userKeys {
		user[k] = v
	}
	doc := map[string]any{"apiVersion": "v1", "kind": "Config", "current-context": "c",
		"clusters": []any{
			map[string]any{"name": "k", "cluster": map[string]any{"server": "https://api.example:6443"}},
			map[string]any{"name": "other", "cluster": map[string]any{"server": "https://other.example:6443"}}},
		"users": []any{
			map[string]any{"name": "other", "user": map[string]any{"token": "other-token"}},
			map[string]any{"name": "u", "user": user}},
		"contexts": []any{map[string]any{"name": "c", "context": map[string]any{"cluster": "k", "user": "u"}}},
	}
	b, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(path, b, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o640); err != nil { // whatever the umask
		t.Fatal(err)
	}
	return path
}

// storedUsers reads the users of a kubeconfig file back.
func storedUsers(t *testing.T, path string) map[string]map[string]any {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Users []struct {
			Name string         `json:"name"`
			User map[string]any `json:"user"`
		} `json:"users"`
		Clusters []any `json:"clusters"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Clusters) != 2 {
		t.Errorf("the kubeconfig has %d clusters, want 2", len(doc.Clusters))
	}
	users := map[string]map[string]any{}
	for _, u := range doc.Users {
		users[u.Name] = u.User
	}
	return users
}

func storedOIDCConfig(t *testing.T, path string) map[string]any {
	t.Helper()
	ap, _ := storedUsers(t, path)["u"]["auth-provider"].(map[string]any)
	conf, _ := ap["config"].(map[string]any)
	if conf == nil {
		t.Fatalf("user u has no auth-provider config any more")
	}
	return conf
}

// TestOIDCValidToken: an id-token that is valid for longer than the margin
// is sent as it is, without asking the identity provider; one that
// expires within the margin is refreshed.
func TestOIDCValidToken(t *testing.T) {
	fresh := testJWT(t, time.Now().Add(time.Hour), "fresh")
	idp := newFakeIdP(t, grant(fresh, oidcNewRefresh))
	path := writeOIDCKubeconfig(t, t.TempDir(), "oidc", idp.oidcConf(testJWT(t, time.Now().Add(time.Hour), "valid")), nil)
	before, _ := os.ReadFile(path)
	cfg, err := LoadKubeconfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cfg.Header.Get("Authorization"), "Bearer "+testJWT(t, time.Now().Add(time.Hour), "valid"); got != want {
		t.Errorf("Authorization %q, want %q", got, want)
	}
	if d, r := idp.counts(); d != 0 || r != 0 {
		t.Errorf("%d discoveries and %d refreshes; want none", d, r)
	}
	if after, _ := os.ReadFile(path); string(after) != string(before) {
		t.Errorf("the kubeconfig was rewritten")
	}

	path = writeOIDCKubeconfig(t, t.TempDir(), "oidc", idp.oidcConf(testJWT(t, time.Now().Add(5*time.Second), "soon")), nil)
	cfg, err = LoadKubeconfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Header.Get("Authorization"); got != "Bearer "+fresh {
		t.Errorf("an id-token expiring in 5 s: Authorization %q, want the refreshed one", got)
	}

	path = writeOIDCKubeconfig(t, t.TempDir(), "oidc", idp.oidcConf(testJWT(t, time.Time{}, "no-exp")), nil)
	cfg, err = LoadKubeconfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Header.Get("Authorization"); got != "Bearer "+fresh {
		t.Errorf("an id-token without exp: Authorization %q, want the refreshed one", got)
	}
}

// TestOIDCRefresh: an expired id-token is refreshed as client-go refreshes
// it (discovery under the issuer, the refresh grant with the client in
// basic auth), sent, and written back to the user in the kubeconfig, which
// keeps everything else.
// As client-go, the kubeconfig's own token or password is sent instead of
// the provider's, which is never asked; its configuration must still hold.
func TestOIDCBesideAToken(t *testing.T) {
	idp := newFakeIdP(t, grant(testJWT(t, time.Now().Add(time.Hour), "fresh"), oidcNewRefresh))
	expired := idp.oidcConf(testJWT(t, time.Now().Add(-time.Hour), "expired"))
	cfg, err := LoadKubeconfig(writeOIDCKubeconfig(t, t.TempDir(), "oidc", expired, map[string]any{"token": "own-token"}))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Header.Get("Authorization"); got != "Bearer own-token" {
		t.Errorf("Authorization %q, want the kubeconfig's token", got)
	}
	if d, r := idp.counts(); d != 0 || r != 0 {
		t.Errorf("%d discoveries and %d refreshes; want none", d, r)
	}
	delete(expired, "client-id")
	_, err = LoadKubeconfig(writeOIDCKubeconfig(t, t.TempDir(), "oidc", expired, map[string]any{"username": "a", "password": "b"}))
	if err == nil || !strings.Contains(err.Error(), "client-id is not set") {
		t.Errorf("err = %v, want the provider's configuration checked", err)
	}
}

func TestOIDCRefresh(t *testing.T) {
	fresh := testJWT(t, time.Now().Add(time.Hour), "fresh")
	idp := newFakeIdP(t, grant(fresh, oidcNewRefresh))
	dir := t.TempDir()
	path := writeOIDCKubeconfig(t, dir, "oidc", idp.oidcConf(testJWT(t, time.Now().Add(-time.Minute), "expired")),
		map[string]any{"as": "someone"})
	cfg, err := LoadKubeconfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Header.Get("Authorization"); got != "Bearer "+fresh {
		t.Errorf("Authorization %q, want the new id-token", got)
	}
	if got := cfg.Header.Get("Impersonate-User"); got != "someone" {
		t.Errorf("Impersonate-User %q, want someone", got)
	}
	if d, r := idp.counts(); d != 1 || r != 1 {
		t.Fatalf("%d discoveries and %d refreshes; want one each", d, r)
	}
	req := idp.requests[0]
	if req.form.Get("grant_type") != "refresh_token" || req.form.Get("refresh_token") != oidcRefreshToken ||
		req.form.Has("client_id") || req.form.Has("client_secret") || req.form.Has("scope") {
		t.Errorf("refresh form %v: want the refresh grant with the refresh-token, no client and no scope", req.form)
	}
	if !req.basic || req.user != "plexus" || req.pass != oidcClientSecret || req.contentType != "application/x-www-form-urlencoded" {
		t.Errorf("refresh request: basic auth %v %q (secret right: %v), type %q: want the client id and secret in basic auth",
			req.basic, req.user, req.pass == oidcClientSecret, req.contentType)
	}

	conf := storedOIDCConfig(t, path)
	if conf["id-token"] != fresh || conf["refresh-token"] != oidcNewRefresh {
		t.Errorf("the kubeconfig holds id-token %v, refresh-token %v: want the new ones", conf["id-token"], conf["refresh-token"])
	}
	if conf["client-secret"] != oidcClientSecret || conf["idp-issuer-url"] != idp.issuer+"/" || conf["extra-scopes"] != "groups" {
		t.Errorf("the kubeconfig's other oidc keys changed: %v", conf)
	}
	users := storedUsers(t, path)
	if users["other"]["token"] != "other-token" || users["u"]["as"] != "someone" {
		t.Errorf("the other user or keys changed: %v", users)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o640 {
		t.Errorf("the kubeconfig's mode: %v (%v), want 0640", st.Mode(), err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("the kubeconfig's directory holds %d files, want the kubeconfig alone (no lock, no temporary file)", len(entries))
	}

	cfg, err = LoadKubeconfig(path)
	if err != nil {
		t.Fatalf("the rewritten kubeconfig: %v", err)
	}
	if got := cfg.Header.Get("Authorization"); got != "Bearer "+fresh || cfg.Host != "https://api.example:6443" {
		t.Errorf("the rewritten kubeconfig: host %q, Authorization %q", cfg.Host, got)
	}
	if d, r := idp.counts(); d != 1 || r != 1 {
		t.Errorf("loading the rewritten kubeconfig asked the IdP again (%d discoveries, %d refreshes)", d, r)
	}
}

// TestOIDCRefreshClientInForm: a token endpoint that refuses the client in
// basic auth is asked again with client_id and client_secret in the form,
// as x/oauth2 does for client-go; an answer without refresh_token keeps the
// refresh-token; a form-encoded answer is read.
func TestOIDCRefreshClientInForm(t *testing.T) {
	fresh := testJWT(t, time.Now().Add(time.Hour), "fresh")
	idp := newFakeIdP(t, func(req tokenRequest) (int, string, string) {
		if req.basic {
			return http.StatusUnauthorized, "application/json", `{"error":"invalid_client"}`
		}
		if req.form.Get("client_id") != "plexus" || req.form.Get("client_secret") != oidcClientSecret {
			return http.StatusUnauthorized, "application/json", `{"error":"invalid_client"}`
		}
		return http.StatusOK, "application/x-www-form-urlencoded", url.Values{"access_token": {"a"}, "id_token": {fresh}}.Encode()
	})
	path := writeOIDCKubeconfig(t, t.TempDir(), "oidc", idp.oidcConf(testJWT(t, time.Now().Add(-time.Hour), "expired")), nil)
	cfg, err := LoadKubeconfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Header.Get("Authorization"); got != "Bearer "+fresh {
		t.Errorf("Authorization %q, want the new id-token", got)
	}
	if _, r := idp.counts(); r != 2 {
		t.Errorf("%d refresh requests, want 2 (basic auth, then the form)", r)
	}
	conf := storedOIDCConfig(t, path)
	if conf["id-token"] != fresh || conf["refresh-token"] != oidcRefreshToken {
		t.Errorf("the kubeconfig holds id-token %v, refresh-token %v: want the new id-token and the old refresh-token", conf["id-token"], conf["refresh-token"])
	}
}

// TestOIDCRefreshThroughSymlink: a kubeconfig that is a symbolic link has
// the file it points to replaced, the link kept; keys the plugin does not
// know, numbers among them, are written back as they were.
func TestOIDCRefreshThroughSymlink(t *testing.T) {
	fresh := testJWT(t, time.Now().Add(time.Hour), "fresh")
	idp := newFakeIdP(t, grant(fresh, oidcNewRefresh))
	dir := t.TempDir()
	target := writeOIDCKubeconfig(t, dir, "oidc", idp.oidcConf(testJWT(t, time.Now().Add(-time.Hour), "expired")), nil)
	f, err := os.OpenFile(target, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("x-plexus-test: 12345678901234567890\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	link := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKubeconfig(link); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Lstat(link); err != nil || st.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the link was replaced: %v %v", st.Mode(), err)
	}
	if conf := storedOIDCConfig(t, target); conf["id-token"] != fresh {
		t.Errorf("the linked file holds id-token %v, want the new one", conf["id-token"])
	}
	if raw, _ := os.ReadFile(target); !strings.Contains(string(raw), "x-plexus-test: 12345678901234567890\n") {
		t.Errorf("the unknown key changed:\n%s", raw)
	}
}

// TestOIDCCertificateAuthority: the IdP is trusted through
// idp-certificate-authority-data or idp-certificate-authority, and refused
// without (its certificate is no system root).
func TestOIDCCertificateAuthority(t *testing.T) {
	fresh := testJWT(t, time.Now().Add(time.Hour), "fresh")
	idp := newFakeIdP(t, grant(fresh, oidcNewRefresh))
	expired := testJWT(t, time.Now().Add(-time.Hour), "expired")

	conf := idp.oidcConf(expired)
	delete(conf, "idp-certificate-authority-data")
	path := writeOIDCKubeconfig(t, t.TempDir(), "oidc", conf, nil)
	_, err := LoadKubeconfig(path)
	if err == nil {
		t.Fatal("loaded with an IdP whose CA is not trusted")
	}
	host := strings.TrimPrefix(idp.URL, "https://")
	for _, w := range []string{path, `auth-provider "oidc"`, "discovery " + host + "/realms/r/.well-known/openid-configuration", "certificate"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
	if _, r := idp.counts(); r != 0 {
		t.Errorf("the refresh-token was sent to an IdP that is not trusted")
	}

	dir := t.TempDir()
	ca, _ := base64.StdEncoding.DecodeString(idp.caData())
	if err := os.WriteFile(filepath.Join(dir, "idp-ca.crt"), ca, 0o600); err != nil {
		t.Fatal(err)
	}
	conf["idp-certificate-authority"] = filepath.Join(dir, "idp-ca.crt")
	cfg, err := LoadKubeconfig(writeOIDCKubeconfig(t, dir, "oidc", conf, nil))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Header.Get("Authorization"); got != "Bearer "+fresh {
		t.Errorf("Authorization %q, want the new id-token", got)
	}
}

// TestOIDCRefreshOnce: processes that find the id-token expired together
// refresh it once: the others wait for the kubeconfig's lock and take the
// token the first wrote.
func TestOIDCRefreshOnce(t *testing.T) {
	fresh := testJWT(t, time.Now().Add(time.Hour), "fresh")
	answer := grant(fresh, oidcNewRefresh)
	waiting := make(chan struct{}, 4)
	defer func() { lockWaiting = nil }()
	lockWaiting = func() { waiting <- struct{}{} }
	idp := newFakeIdP(t, func(req tokenRequest) (int, string, string) {
		// The refresh holds the lock until the three other loads wait
		// for it: without the lock they would each ask here, and never
		// signal.
		for range 3 {
			select {
			case <-waiting:
			case <-time.After(30 * time.Second):
				t.Error("the other loads did not wait for the kubeconfig's lock")
				return http.StatusServiceUnavailable, "text/plain", ""
			}
		}
		return answer(req)
	})
	path := writeOIDCKubeconfig(t, t.TempDir(), "oidc", idp.oidcConf(testJWT(t, time.Now().Add(-time.Hour), "expired")), nil)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	got := make([]string, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cfg, err := LoadKubeconfig(path)
			if errs[i] = err; err == nil {
				got[i] = cfg.Header.Get("Authorization")
			}
		}()
	}
	wg.Wait()
	for i := range errs {
		if errs[i] != nil || got[i] != "Bearer "+fresh {
			t.Errorf("load %d: %v, Authorization %q", i, errs[i], got[i])
		}
	}
	if _, r := idp.counts(); r != 1 {
		t.Errorf("%d refresh requests, want 1", r)
	}
}

// TestOIDCLockHeld: while another writer holds the kubeconfig's lock past
// the wait, the refresh fails without asking the IdP and names the lock.
func TestOIDCLockHeld(t *testing.T) {
	defer func(w time.Duration) { kubeconfigLockWait = w }(kubeconfigLockWait)
	kubeconfigLockWait = 100 * time.Millisecond
	idp := newFakeIdP(t, grant(testJWT(t, time.Now().Add(time.Hour), "fresh"), oidcNewRefresh))
	path := writeOIDCKubeconfig(t, t.TempDir(), "oidc", idp.oidcConf(testJWT(t, time.Now().Add(-time.Hour), "expired")), nil)
	if err := os.WriteFile(path+".lock", nil, 0o600); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)
	_, err := LoadKubeconfig(path)
	if err == nil || !strings.Contains(err.Error(), path+".lock") {
		t.Fatalf("error %v, want one that names the lock", err)
	}
	if d, r := idp.counts(); d != 0 || r != 0 {
		t.Errorf("%d discoveries and %d refreshes; want none", d, r)
	}
	if after, _ := os.ReadFile(path); string(after) != string(before) {
		t.Errorf("the kubeconfig was rewritten")
	}
	if _, err := os.Stat(path + ".lock"); err != nil {
		t.Errorf("the other writer's lock was removed: %v", err)
	}
}

func TestOIDCErrors(t *testing.T) {
	expired := testJWT(t, time.Now().Add(-time.Hour), "expired-"+oidcBodySecret)
	fresh := testJWT(t, time.Now().Add(time.Hour), "fresh-"+oidcBodySecret)
	secretBody := `{"error":"invalid_grant","error_description":"refresh token ` + oidcRefreshToken + ` revoked ` + oidcBodySecret + `"}`
	for _, tc := range []struct {
		name     string
		provider string
		edit     func(conf map[string]string)
		userKeys map[string]any
		answer   func(tokenRequest) (int, string, string)
		want     []string
		requests int // refresh requests
	}{
		{name: "no client-id", edit: func(c map[string]string) { delete(c, "client-id") }, want: []string{"client-id is not set"}},
		{name: "no idp-issuer-url", edit: func(c map[string]string) { delete(c, "idp-issuer-url") }, want: []string{"idp-issuer-url is not set"}},
		{name: "expired without refresh-token", edit: func(c map[string]string) { delete(c, "refresh-token") },
			want: []string{"no valid id-token", "refresh-token"}},
		{name: "neither token", edit: func(c map[string]string) { delete(c, "refresh-token"); delete(c, "id-token") },
			want: []string{"no valid id-token", "refresh-token"}},
		{name: "id-token not a JWT", edit: func(c map[string]string) { c["id-token"] = oidcBodySecret },
			want: []string{"id-token: not a JWT"}},
		{name: "CA data not base64", edit: func(c map[string]string) { c["idp-certificate-authority-data"] = "%%%" },
			want: []string{"idp-certificate-authority-data: not base64"}},
		{name: "answer without id_token", answer: func(tokenRequest) (int, string, string) {
			return http.StatusOK, "application/json", `{"access_token":"` + oidcBodySecret + `","refresh_token":"` + oidcNewRefresh + `"}`
		}, want: []string{"/realms/r/token", "no id_token"}, requests: 1},
		{name: "answer without access_token", answer: func(tokenRequest) (int, string, string) {
			return http.StatusOK, "application/json", `{"id_token":"` + fresh + `"}`
		}, want: []string{"/realms/r/token", "no access_token"}, requests: 2},
		{name: "IdP 400", answer: func(tokenRequest) (int, string, string) {
			return http.StatusBadRequest, "application/json", secretBody
		}, want: []string{"/realms/r/token", "400 Bad Request", `error "invalid_grant"`}, requests: 2},
		{name: "IdP 500", answer: func(tokenRequest) (int, string, string) {
			return http.StatusInternalServerError, "text/html", "<h1>" + oidcBodySecret + " " + oidcRefreshToken + "</h1>"
		}, want: []string{"/realms/r/token", "500 Internal Server Error"}, requests: 2},
		{name: "discovery 404", edit: func(c map[string]string) { c["idp-issuer-url"] += "elsewhere" },
			want: []string{"discovery", "/realms/r/elsewhere/.well-known/openid-configuration", "404 Not Found"}},
		{name: "with exec", userKeys: map[string]any{"exec": map[string]any{"command": "./cred.sh", "apiVersion": "client.authentication.k8s.io/v1"}},
			want: []string{"auth-provider and exec are both set"}},
		{name: "gcp", provider: "gcp", want: []string{`auth-provider "gcp"`, "not supported"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			answer := tc.answer
			if answer == nil {
				answer = grant(fresh, oidcNewRefresh)
			}
			idp := newFakeIdP(t, answer)
			conf := idp.oidcConf(expired)
			if tc.edit != nil {
				tc.edit(conf)
			}
			provider := "oidc"
			if tc.provider != "" {
				provider = tc.provider
			}
			path := writeOIDCKubeconfig(t, t.TempDir(), provider, conf, tc.userKeys)
			before, _ := os.ReadFile(path)
			_, err := LoadKubeconfig(path)
			if err == nil {
				t.Fatal("loaded; want an error")
			}
			msg := err.Error()
			for _, w := range append(tc.want, path, `user "u"`, `auth-provider "`+provider+`"`) {
				if w == `auth-provider "oidc"` && strings.HasPrefix(tc.name, "with ") {
					continue // refused before the provider is asked
				}
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not say %q", msg, w)
				}
			}
			for _, s := range []string{oidcClientSecret, oidcRefreshToken, oidcNewRefresh, oidcBodySecret, expired, fresh} {
				if strings.Contains(msg, s) {
					t.Errorf("error %q carries a secret (%.12s...)", msg, s)
				}
			}
			if _, r := idp.counts(); r != tc.requests {
				t.Errorf("%d refresh requests, want %d", r, tc.requests)
			}
			if after, _ := os.ReadFile(path); string(after) != string(before) {
				t.Errorf("the kubeconfig was rewritten")
			}
		})
	}
}
