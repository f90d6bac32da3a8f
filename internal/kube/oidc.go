package kube

// The kubeconfig's oidc auth-provider, with the behaviour of client-go's
// (k8s.io/client-go/plugin/pkg/client/auth/oidc): the user's id-token is
// sent while it is valid; an expired one is refreshed at the issuer's token
// endpoint with the refresh-token, and the new tokens are written back to
// the user in the kubeconfig file. client-go has no other auth-provider (gcp
// and azure were removed and fail there).

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/plexus-cni/plexus/internal/cache"
)

const (
	// oidcTimeout bounds each request to the identity provider (client-go
	// sets none; the plugin must not hang on one).
	oidcTimeout = 30 * time.Second
	// oidcMargin: an id-token that expires within it counts as expired
	// (client-go's margin, against clocks that disagree).
	oidcMargin = 10 * time.Second
	// tokenAnswerLimit caps what is read of an identity provider's answer.
	tokenAnswerLimit = 1 << 20
)

// kubeconfigLockWait bounds the wait for another writer's lock on the
// kubeconfig (a variable for the tests).
var kubeconfigLockWait = 30 * time.Second

// lockWaiting, when set (by tests), is called once by each lockKubeconfig
// that finds the lock held and waits.
var lockWaiting func()

// authProviderConfig is a kubeconfig user's auth-provider (clientcmd's
// AuthProviderConfig keys).
type authProviderConfig struct {
	Name   string            `json:"name"`
	Config map[string]string `json:"config"`
}

// authProviderToken returns the bearer token of the user's auth-provider.
// path is the kubeconfig the user was read from: a refreshed oidc token is
// written back to it.
func authProviderToken(ap *authProviderConfig, path, user string) (string, error) {
	if err := checkAuthProvider(ap); err != nil {
		return "", err
	}
	token, err := oidcToken(ap.Config, path, user)
	if err != nil {
		return "", fmt.Errorf("auth-provider %q: %w", ap.Name, err)
	}
	return token, nil
}

// checkAuthProvider checks the auth-provider's configuration as client-go
// does when it builds the provider, before any request: only oidc is
// known, and its configuration must hold (newOIDCProvider).
func checkAuthProvider(ap *authProviderConfig) error {
	if ap.Name != "oidc" {
		return fmt.Errorf("auth-provider %q: not supported; as in client-go, only oidc is (gcp and azure were removed from client-go: use their exec credential plugins)", ap.Name)
	}
	if _, err := newOIDCProvider(ap.Config); err != nil {
		return fmt.Errorf("auth-provider %q: %w", ap.Name, err)
	}
	return nil
}

// oidcProvider is the identity provider of an oidc auth-provider.
type oidcProvider struct {
	issuer, clientID, clientSecret string
	client                         *http.Client
}

// oidcToken returns the user's valid id-token, refreshing it if need be.
// As client-go: idp-issuer-url and client-id are required (and the IdP's CA
// must be readable) even while the id-token is valid; an id-token that is no
// JWT is an error, not a reason to refresh; extra-scopes is ignored (client-go
// sends no scope when it refreshes).
func oidcToken(conf map[string]string, path, user string) (string, error) {
	p, err := newOIDCProvider(conf)
	if err != nil {
		return "", err
	}
	if id := conf["id-token"]; id != "" {
		valid, err := idTokenValid(id, time.Now())
		if err != nil {
			return "", err
		}
		if valid {
			return id, nil
		}
	}
	if conf["refresh-token"] == "" {
		return "", errors.New("no valid id-token, and no refresh-token to refresh it with")
	}
	return p.refreshAndPersist(conf, path, user)
}

// newOIDCProvider checks the auth-provider's config and makes the client
// that asks its identity provider.
func newOIDCProvider(conf map[string]string) (*oidcProvider, error) {
	for _, key := range []string{"idp-issuer-url", "client-id"} {
		if conf[key] == "" {
			return nil, fmt.Errorf("%s is not set", key)
		}
	}
	var ca []byte
	var err error
	// As client-go, the data is preferred to the file when both are set,
	// and the file's name is taken as it is (clientcmd does not make it
	// relative to the kubeconfig).
	switch {
	case conf["idp-certificate-authority-data"] != "":
		if ca, err = base64.StdEncoding.DecodeString(conf["idp-certificate-authority-data"]); err != nil {
			return nil, errors.New("idp-certificate-authority-data: not base64")
		}
	case conf["idp-certificate-authority"] != "":
		if ca, err = os.ReadFile(conf["idp-certificate-authority"]); err != nil {
			return nil, fmt.Errorf("idp-certificate-authority: %w", err)
		}
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12} // the system's roots without a CA
	if ca != nil {
		// Only this CA is trusted (an empty file trusts none, as in client-go).
		tc.RootCAs = x509.NewCertPool()
		if len(ca) > 0 && !tc.RootCAs.AppendCertsFromPEM(ca) {
			return nil, errors.New("idp-certificate-authority: holds no PEM certificate")
		}
	}
	// The proxy from the environment, as client-go (not the cluster's
	// proxy-url).
	transport := &http.Transport{Proxy: http.ProxyFromEnvironment, TLSClientConfig: tc,
		TLSHandshakeTimeout: 10 * time.Second, ForceAttemptHTTP2: true}
	return &oidcProvider{issuer: conf["idp-issuer-url"], clientID: conf["client-id"], clientSecret: conf["client-secret"],
		client: &http.Client{Transport: transport, Timeout: oidcTimeout}}, nil
}

// idTokenValid says whether the JWT's exp is later than now and the margin;
// a JWT without exp has expired. A token that is no JWT is an error.
func idTokenValid(token string, now time.Time) (bool, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return false, errors.New("id-token: not a JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return false, errors.New("id-token: its payload is not base64url")
	}
	var claims struct {
		Exp json.RawMessage `json:"exp"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		return false, errors.New("id-token: its payload is not a JSON object")
	}
	if len(claims.Exp) == 0 {
		return false, nil
	}
	var n json.Number
	if err := json.Unmarshal(claims.Exp, &n); err != nil {
		return false, errors.New("id-token: exp is not a number")
	}
	exp, err := n.Int64()
	if err != nil {
		f, ferr := n.Float64()
		if ferr != nil {
			return false, errors.New("id-token: exp is not a number")
		}
		exp = int64(f)
	}
	return now.Add(oidcMargin).Before(time.Unix(exp, 0)), nil
}

// refreshAndPersist refreshes the id-token and writes the new tokens to the
// user in the kubeconfig, as client-go's persister does; a failed write is
// an error, as there. Unlike client-go, which serialises refreshes within
// its one process, this holds the kubeconfig's lock (the one clientcmd
// takes to write it) from before the refresh: every plugin invocation is a
// process of its own, and one that waited finds the token another refreshed
// instead of spending the same refresh-token again.
func (p *oidcProvider) refreshAndPersist(conf map[string]string, path, user string) (string, error) {
	unlock, err := lockKubeconfig(path)
	if err != nil {
		return "", err
	}
	defer unlock()
	doc, ap, err := readAuthProvider(path, user)
	if err != nil {
		return "", err
	}
	refreshToken := conf["refresh-token"]
	if stored, _ := ap["config"].(map[string]any); stored != nil {
		if id, _ := stored["id-token"].(string); id != "" {
			if valid, err := idTokenValid(id, time.Now()); err == nil && valid {
				return id, nil
			}
		}
		if rt, _ := stored["refresh-token"].(string); rt != "" {
			refreshToken = rt
		}
	}
	idToken, newRefreshToken, err := p.refresh(refreshToken)
	if err != nil {
		return "", err
	}
	if ap == nil {
		// As client-go's persister: a user no longer in the file, or no
		// longer with an auth-provider, is not written.
		return idToken, nil
	}
	stored, _ := ap["config"].(map[string]any)
	if stored == nil {
		stored = map[string]any{}
		ap["config"] = stored
	}
	stored["id-token"] = idToken
	if newRefreshToken != "" {
		stored["refresh-token"] = newRefreshToken
	}
	data, err := yaml.Marshal(doc)
	if err == nil {
		err = cache.ReplaceAtomic(path, data)
	}
	if err != nil {
		return "", fmt.Errorf("could not write the new tokens: %w", err)
	}
	return idToken, nil
}

// refresh asks the issuer's token endpoint for a new id-token with the
// refresh token; it returns the new refresh token too, if the answer has
// one.
//
// client-go refreshes with golang.org/x/oauth2 and a new oauth2.Config at
// every refresh, which does not know how the endpoint wants the client to
// authenticate: it sends the client id and secret, form-escaped, in HTTP
// basic auth, and if that request fails in any way, sends them again as
// client_id and client_secret form parameters. So does this.
func (p *oidcProvider) refresh(refreshToken string) (idToken, newRefreshToken string, err error) {
	tokenURL, err := p.tokenEndpoint()
	if err != nil {
		return "", "", err
	}
	answer, err := p.postRefresh(tokenURL, refreshToken, true)
	if err != nil {
		answer, err = p.postRefresh(tokenURL, refreshToken, false)
	}
	if err != nil {
		return "", "", fmt.Errorf("refreshing the id-token: %w", err)
	}
	if answer.idToken == "" {
		return "", "", fmt.Errorf("refreshing the id-token: token endpoint %s: the answer has no id_token (the login did not ask for the openid scope, or the provider gives none on a refresh)", urlForErrors(tokenURL))
	}
	return answer.idToken, answer.refreshToken, nil
}

// tokenEndpoint reads the token_endpoint of the issuer's OpenID Connect
// discovery document.
func (p *oidcProvider) tokenEndpoint() (string, error) {
	wellKnown := strings.TrimSuffix(p.issuer, "/") + "/.well-known/openid-configuration"
	where := "discovery " + urlForErrors(wellKnown)
	resp, err := p.client.Get(wellKnown)
	if err != nil {
		return "", fmt.Errorf("%s: %w", where, requestCause(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, tokenAnswerLimit))
	if err != nil {
		return "", fmt.Errorf("%s: %w", where, requestCause(err))
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %s", where, statusText(resp.StatusCode))
	}
	var doc struct {
		TokenEndpoint string `json:"token_endpoint"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return "", fmt.Errorf("%s: the answer is not a JSON object", where)
	}
	if doc.TokenEndpoint == "" {
		return "", fmt.Errorf("%s: the answer has no token_endpoint", where)
	}
	return doc.TokenEndpoint, nil
}

// tokenAnswer is what an OAuth2 token endpoint answered.
type tokenAnswer struct {
	accessToken, idToken, refreshToken, errorCode string
}

// postRefresh makes one OAuth2 refresh request (RFC 6749 section 6), the
// client authenticated with basic auth (inHeader) or form parameters.
func (p *oidcProvider) postRefresh(tokenURL, refreshToken string, inHeader bool) (*tokenAnswer, error) {
	where := "token endpoint " + urlForErrors(tokenURL)
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}}
	if !inHeader {
		form.Set("client_id", p.clientID)
		if p.clientSecret != "" {
			form.Set("client_secret", p.clientSecret)
		}
	}
	req, err := http.NewRequest(http.MethodPost, tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("%s: not a URL", where)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if inHeader {
		req.SetBasicAuth(url.QueryEscape(p.clientID), url.QueryEscape(p.clientSecret))
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, requestCause(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, tokenAnswerLimit))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, requestCause(err))
	}
	answer, err := parseTokenAnswer(resp.StatusCode, resp.Header.Get("Content-Type"), body)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	return answer, nil
}

// parseTokenAnswer reads a token endpoint's answer as x/oauth2 does: form
// encoded if its type says so, JSON otherwise; a status other than 2xx or
// an error field fails, and so does an answer without access_token. Its
// errors carry the status and the OAuth2 error code, never the body.
func parseTokenAnswer(status int, contentType string, body []byte) (*tokenAnswer, error) {
	var a tokenAnswer
	var parseErr error
	switch media, _, _ := mime.ParseMediaType(contentType); media {
	case "application/x-www-form-urlencoded", "text/plain":
		var vals url.Values
		vals, parseErr = url.ParseQuery(string(body))
		a = tokenAnswer{accessToken: vals.Get("access_token"), idToken: vals.Get("id_token"),
			refreshToken: vals.Get("refresh_token"), errorCode: vals.Get("error")}
	default:
		var j struct {
			AccessToken  string `json:"access_token"`
			IDToken      any    `json:"id_token"`
			RefreshToken string `json:"refresh_token"`
			Error        string `json:"error"`
		}
		parseErr = json.Unmarshal(body, &j)
		a = tokenAnswer{accessToken: j.AccessToken, refreshToken: j.RefreshToken, errorCode: j.Error}
		a.idToken, _ = j.IDToken.(string) // an id_token that is no string is none
	}
	failed := status < 200 || status > 299
	switch {
	case parseErr != nil && failed:
		return nil, errors.New(statusText(status))
	case parseErr != nil:
		return nil, errors.New("cannot parse the answer")
	case failed || a.errorCode != "":
		msg := statusText(status)
		if code := oauthErrorCode(a.errorCode); code != "" {
			msg += fmt.Sprintf(" (error %q)", code)
		}
		return nil, errors.New(msg)
	case a.accessToken == "":
		return nil, errors.New("the answer has no access_token")
	}
	return &a, nil
}

// oauthErrorCode returns an OAuth2 error code fit for a message (a short
// word such as invalid_grant), or "".
func oauthErrorCode(code string) string {
	if len(code) > 64 {
		return ""
	}
	for _, c := range code {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return ""
		}
	}
	return code
}

// statusText is a status code and its standard text (a server's own reason
// phrase could say anything).
func statusText(code int) string {
	return fmt.Sprintf("%d %s", code, http.StatusText(code))
}

// urlForErrors is a URL's host and path: no user info, no query.
func urlForErrors(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(not a URL)"
	}
	return u.Host + u.Path
}

// requestCause is the cause of a failed request without the URL that
// net/http puts in front of it (urlForErrors names the endpoint instead).
func requestCause(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// lockKubeconfig takes the lock clientcmd takes to write a kubeconfig (the
// file name with .lock, created exclusively), waiting for another holder
// at most kubeconfigLockWait. It returns the function that releases it.
func lockKubeconfig(path string) (unlock func(), err error) {
	lock := path + ".lock"
	deadline := time.Now().Add(kubeconfigLockWait)
	for waited := false; ; waited = true {
		f, err := os.OpenFile(lock, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0)
		if err == nil {
			f.Close()
			return func() { os.Remove(lock) }, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("cannot lock the kubeconfig to write it: %w", err)
		}
		if !waited && lockWaiting != nil {
			lockWaiting()
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%s: another writer has held it for %s (kubectl and client-go take it too; remove it if none is writing the kubeconfig)", lock, kubeconfigLockWait)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// readAuthProvider reads the kubeconfig as a generic document and returns
// it with the auth-provider of its user with that name (the last one, as
// clientcmd keeps it; nil if it has none). Keys the plugin does not know
// are kept for writing it back.
func readAuthProvider(path, user string) (doc map[string]any, ap map[string]any, err error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	useNumber := func(d *json.Decoder) *json.Decoder { d.UseNumber(); return d }
	if err := yaml.Unmarshal(raw, &doc, useNumber); err != nil {
		return nil, nil, fmt.Errorf("cannot parse it again: %s", firstLine(err.Error()))
	}
	users, _ := doc["users"].([]any)
	for _, item := range users {
		entry, _ := item.(map[string]any)
		if name, _ := entry["name"].(string); name != user {
			continue
		}
		u, _ := entry["user"].(map[string]any)
		ap, _ = u["auth-provider"].(map[string]any)
	}
	return doc, ap, nil
}
