package registryd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"sort"
	"strconv"
	"strings"

	"regctl/pkg/ocierr"
	"regctl/pkg/storage"
)

// listPage is one page of a sorted list, cut by the n and last parameters.
type listPage struct {
	items []string
	// next is the Link header value when more items follow, else "".
	next string
}

// paginate applies n and last (spec: Listing Tags) to a sorted list.
// Without n the whole rest of the list is returned; n=0 returns nothing
// and no Link header.
func paginate(all []string, q url.Values, base string) (listPage, error) {
	if last := q.Get("last"); last != "" {
		all = all[sort.Search(len(all), func(i int) bool { return all[i] > last }):]
	}
	if !q.Has("n") {
		return listPage{items: all}, nil
	}
	n, err := strconv.Atoi(q.Get("n"))
	if err != nil || n < 0 {
		return listPage{}, ocierr.New(http.StatusBadRequest, CodePaginationInvalid,
			"the n parameter must be a non-negative integer").WithDetail(map[string]string{"n": q.Get("n")})
	}
	if n == 0 {
		return listPage{items: []string{}}, nil
	}
	if n >= len(all) {
		return listPage{items: all}, nil
	}
	items := all[:n]
	v := url.Values{"last": {items[n-1]}, "n": {strconv.Itoa(n)}}
	return listPage{items: items, next: fmt.Sprintf(`<%s?%s>; rel="next"`, base, v.Encode())}, nil
}

// serveJSON answers 200 with a JSON body.
func serveJSON(w http.ResponseWriter, contentType string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
	return nil
}

// listTags returns the names of a repository's tags, unsorted; none when
// it has no tags folder.
func (s *Server) listTags(ctx context.Context, name string) ([]string, error) {
	dir := storage.TagsDir(name)
	entries, err := s.driver.List(ctx, dir)
	if errors.Is(err, storage.ErrNotFound) {
		return []string{}, nil
	} else if err != nil {
		return nil, err
	}
	tags := make([]string, 0, len(entries))
	for _, p := range entries {
		// Skip what cannot be a tag: AWS DataSync leaves 0-byte "folder/"
		// keys that would list as tags with an empty or bogus name.
		tag := path.Base(p)
		if strings.HasSuffix(p, "/") || path.Dir(p) != dir || checkTag(tag) != nil {
			continue
		}
		tags = append(tags, tag)
	}
	return tags, nil
}

// getTags lists a repository's tags, sorted.
func (s *Server) getTags(w http.ResponseWriter, r *http.Request, name string) error {
	ctx := r.Context()
	if _, err := s.driver.Stat(ctx, storage.ManifestsDir(name)); errors.Is(err, storage.ErrNotFound) {
		return ocierr.New(http.StatusNotFound, CodeNameUnknown, "repository name not known to registry").
			WithDetail(map[string]string{"name": name})
	} else if err != nil {
		return err
	}
	tags, err := s.listTags(ctx, name)
	if err != nil {
		return err
	}
	sort.Strings(tags)
	pg, err := paginate(tags, r.URL.Query(), "/v2/"+name+"/tags/list")
	if err != nil {
		return err
	}
	if pg.next != "" {
		w.Header().Set("Link", pg.next)
	}
	return serveJSON(w, "application/json", struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}{name, pg.items})
}

// getCatalog lists every repository: every folder with a _manifests
// child. The walk skips the contents of the "_" folders (layers,
// revisions, uploads), which hold nearly all the files of a root.
func (s *Server) getCatalog(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	repos := []string{}
	err := s.driver.Walk(ctx, storage.RepositoriesRoot(), func(fi storage.FileInfo) error {
		if !fi.IsDir {
			return nil
		}
		if name, ok := storage.RepositoryName(fi.Path); ok {
			if checkName(name) == nil {
				repos = append(repos, name)
			}
			return storage.ErrSkipDir
		}
		// Repository name components never start with "_", so such a
		// folder is one of a repository's own (_layers, _uploads, _regctl).
		if strings.HasPrefix(path.Base(fi.Path), "_") {
			return storage.ErrSkipDir
		}
		return nil
	})
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	sort.Strings(repos)
	pg, err := paginate(repos, r.URL.Query(), "/v2/_catalog")
	if err != nil {
		return err
	}
	if pg.next != "" {
		w.Header().Set("Link", pg.next)
	}
	return serveJSON(w, "application/json", struct {
		Repositories []string `json:"repositories"`
	}{pg.items})
}
