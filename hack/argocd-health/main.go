// Command argocd-health prints what Argo CD concludes about one Kubernetes
// object read as JSON from stdin, with Argo CD's own code: its health package
// (github.com/argoproj/gitops-engine/pkg/health) and its Lua resource
// overrides (github.com/argoproj/argo-cd/v3/util/lua) loaded with the health
// check in LUA_FILE (for LoginProfile and IAMAccount), standard libraries
// off as in production.
//
// Usage: argocd-health LUA_FILE < object.json
// Output: {"argocd": STATUS, "argocd-message": MESSAGE}
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	appv1 "github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	argolua "github.com/argoproj/argo-cd/v3/util/lua"
	"github.com/argoproj/gitops-engine/pkg/health"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "argocd-health: "+format+"\n", args...)
	os.Exit(2)
}

func main() {
	if len(os.Args) != 2 {
		fail("usage: argocd-health LUA_FILE < object.json")
	}
	raw, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail("reading stdin: %v", err)
	}
	object := &unstructured.Unstructured{}
	if err := object.UnmarshalJSON(raw); err != nil {
		fail("stdin is not a Kubernetes object in JSON: %v", err)
	}
	script, err := os.ReadFile(os.Args[1])
	if err != nil {
		fail("reading %s: %v", os.Args[1], err)
	}
	// deploy/gitops/argocd-cm.yaml registers the one script for both kinds.
	overrides := argolua.ResourceHealthOverrides{
		"iam.loginprofile.dev/LoginProfile": appv1.ResourceOverride{HealthLua: string(script)},
		"iam.loginprofile.dev/IAMAccount":   appv1.ResourceOverride{HealthLua: string(script)},
	}
	result, err := health.GetResourceHealth(object, overrides)
	if err != nil {
		fail("%v", err)
	}
	verdict := map[string]string{"argocd": "none"}
	if result != nil {
		verdict = map[string]string{"argocd": string(result.Status), "argocd-message": result.Message}
	}
	out, _ := json.Marshal(verdict)
	fmt.Println(string(out))
}
