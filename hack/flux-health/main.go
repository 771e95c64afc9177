// Command flux-health prints what Flux concludes about one Kubernetes object
// read as JSON from stdin, with Flux's own code: its kstatus fork
// (github.com/fluxcd/cli-utils, for a Kustomization's `wait` and
// `healthChecks`) and its CEL health check (github.com/fluxcd/pkg/runtime/cel,
// for `healthCheckExprs`) with the entry for the object's kind in EXPRS_YAML.
//
// With --validate, it reads Flux objects from a YAML file instead and decodes
// each strictly into its controller's own API type (OCIRepository,
// GitRepository, HelmRelease, Kustomization), so a misspelt or misplaced
// field in an example fails as Flux would refuse it.
//
// Usage: flux-health EXPRS_YAML < object.json
// Output: {"flux-kstatus": ..., "flux-cel": ...}
// Usage: flux-health --validate FLUX_YAML
// Output: the number of objects, or the first one Flux would refuse.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	fluxstatus "github.com/fluxcd/cli-utils/pkg/kstatus/status"
	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/kustomize"
	fluxcel "github.com/fluxcd/pkg/runtime/cel"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "flux-health: "+format+"\n", args...)
	os.Exit(2)
}

// fluxTypes are the kinds an example may hold, each with the API type its
// controller decodes it into.
var fluxTypes = map[string]func() any{
	"source.toolkit.fluxcd.io/v1 OCIRepository":  func() any { return &sourcev1.OCIRepository{} },
	"source.toolkit.fluxcd.io/v1 GitRepository":  func() any { return &sourcev1.GitRepository{} },
	"helm.toolkit.fluxcd.io/v2 HelmRelease":      func() any { return &helmv2.HelmRelease{} },
	"kustomize.toolkit.fluxcd.io/v1 Kustomization": func() any { return &kustomizev1.Kustomization{} },
}

// validate decodes every document of the file strictly as its Flux type.
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
		key := meta.APIVersion + " " + meta.Kind
		newObject, known := fluxTypes[key]
		if !known {
			fail("%s: %s is not a Flux kind this check knows", file, key)
		}
		if err := yaml.UnmarshalStrict(document, newObject()); err != nil {
			fail("%s: %s %d: %v", file, meta.Kind, count+1, err)
		}
		count++
	}
	fmt.Printf("%d objects\n", count)
}

func main() {
	if len(os.Args) == 3 && os.Args[1] == "--validate" {
		validate(os.Args[2])
		return
	}
	if len(os.Args) != 2 {
		fail("usage: flux-health EXPRS_YAML < object.json")
	}
	raw, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail("reading stdin: %v", err)
	}
	object := &unstructured.Unstructured{}
	if err := object.UnmarshalJSON(raw); err != nil {
		fail("stdin is not a Kubernetes object in JSON: %v", err)
	}
	fork, err := fluxstatus.Compute(object.DeepCopy())
	if err != nil {
		fail("kstatus: %v", err)
	}
	exprsYAML, err := os.ReadFile(os.Args[1])
	if err != nil {
		fail("reading %s: %v", os.Args[1], err)
	}
	var checks []kustomize.CustomHealthCheck
	if err := yaml.Unmarshal(exprsYAML, &checks); err != nil {
		fail("%s is not a list of healthCheckExprs entries (%v)", os.Args[1], err)
	}
	// Flux picks the entry by apiVersion and kind, as here.
	var check *kustomize.CustomHealthCheck
	for i := range checks {
		if checks[i].APIVersion == object.GetAPIVersion() && checks[i].Kind == object.GetKind() {
			check = &checks[i]
		}
	}
	if check == nil {
		fail("%s has no entry for %s %s", os.Args[1], object.GetAPIVersion(), object.GetKind())
	}
	evaluator, err := fluxcel.NewStatusEvaluator(&check.HealthCheckExpressions)
	if err != nil {
		fail("healthCheckExprs: %v", err)
	}
	cel, err := evaluator.Evaluate(context.Background(), object.DeepCopy())
	if err != nil {
		fail("healthCheckExprs: %v", err)
	}
	out, _ := json.Marshal(map[string]string{
		"flux-kstatus": fork.Status.String(),
		"flux-cel":     cel.Status.String(),
	})
	fmt.Println(string(out))
}
