// Command argocd-health prints what Argo CD concludes about one Kubernetes
// object read as JSON from stdin, with Argo CD's own code: its health package
// (github.com/argoproj/gitops-engine/pkg/health) and its Lua resource
// overrides (github.com/argoproj/argo-cd/v3/util/lua) loaded with the health
// check in LUA_FILE (for LoginProfile, IAMAccount and RootLoginProfile),
// standard libraries off as in production.
//
// With --validate, it reads Argo CD Applications from a YAML file instead and
// decodes each strictly into Argo CD's own Application type, so a misspelt
// or misplaced field in an example fails as Argo CD would refuse it.
//
// Usage: argocd-health LUA_FILE < object.json
// Output: {"argocd": STATUS, "argocd-message": MESSAGE}
// Usage: argocd-health --validate APPLICATIONS_YAML
// Output: the number of Applications, or the first one Argo CD would refuse.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	appv1 "github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	argolua "github.com/argoproj/argo-cd/v3/util/lua"
	"github.com/argoproj/gitops-engine/pkg/health"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "argocd-health: "+format+"\n", args...)
	os.Exit(2)
}

// validate decodes every document of the file strictly as an Application.
func validate(file string) {
	raw, err := os.ReadFile(file)
	if err != nil {
		fail("reading %s: %v", file, err)
	}
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(raw)))
	count := 0
	for {
		document, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			fail("%s: %v", file, err)
		}
		var meta struct{ APIVersion, Kind string }
		if err := yaml.Unmarshal(document, &meta); err != nil {
			fail("%s: %v", file, err)
		}
		if meta.Kind == "" {
			continue // a document of comments only
		}
		if meta.APIVersion != "argoproj.io/v1alpha1" || meta.Kind != "Application" {
			fail("%s: %s %s is not an Argo CD Application", file, meta.APIVersion, meta.Kind)
		}
		var app appv1.Application
		if err := yaml.UnmarshalStrict(document, &app); err != nil {
			fail("%s: Application %d: %v", file, count+1, err)
		}
		count++
	}
	fmt.Printf("%d Applications\n", count)
}

func main() {
	if len(os.Args) == 3 && os.Args[1] == "--validate" {
		validate(os.Args[2])
		return
	}
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
	// deploy/gitops/argocd-cm.yaml registers the one script for every kind.
	overrides := argolua.ResourceHealthOverrides{}
	for _, kind := range []string{"LoginProfile", "IAMAccount", "RootLoginProfile"} {
		overrides["iam.loginprofile.dev/"+kind] = appv1.ResourceOverride{HealthLua: string(script)}
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
