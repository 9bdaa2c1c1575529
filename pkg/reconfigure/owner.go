package reconfigure

import (
	"os"
	"os/user"
	"slices"
	"strconv"
)

// gitlabGroup is the group gitlab.yml is written for, as omnibus does:
// GitLab runs as user git and reads the file, which holds
// notification_secret, through its group. Tests replace it.
var gitlabGroup = "git"

// resolveGroup settles f.Group before planning: the group id to give the
// file, or -1. When the group does not exist, or exists but this process
// may not give files to it (not root and not a member), the file is
// written owner only (0600) instead, never wider; note says so in the
// second case, which an admin would not expect.
func resolveGroup(f File) (_ File, gid int, note string) {
	if f.Group == "" {
		return f, -1, ""
	}
	g, err := user.LookupGroup(f.Group)
	if err == nil {
		gid, err = strconv.Atoi(g.Gid)
	}
	if err == nil && mayGiveTo(gid) {
		return f, gid, ""
	}
	if err == nil {
		note = "group " + f.Group + " exists but this user may not give files to it: owner only"
	}
	f.Group, f.Mode = "", 0o600
	return f, -1, note
}

// mayGiveTo reports whether this process may change a file's group to
// gid: root may give any, others only to a group they belong to.
func mayGiveTo(gid int) bool {
	if os.Geteuid() == 0 || os.Getegid() == gid {
		return true
	}
	groups, _ := os.Getgroups()
	return slices.Contains(groups, gid)
}

// groupName names a group id for a note, or gives the number.
func groupName(gid int) string {
	if g, err := user.LookupGroupId(strconv.Itoa(gid)); err == nil {
		return g.Name
	}
	return strconv.Itoa(gid)
}
