/** The branch rules of `ci`, kept in the module (not in CircleCI's YAML) so a local run takes the same decisions. */

/** Which of the release steps a branch gets; test, build and smoke always run. */
export interface BranchPlan {
  /** Every branch publishes to Docker Hub unless its name contains `nohub`. */
  publish: boolean;
  /** Only `master` and `main` deploy to Heroku. */
  deploy: boolean;
}

/** The release steps `branch` gets. */
export function branchPlan(branch: string): BranchPlan {
  return { publish: !branch.includes("nohub"), deploy: branch === "master" || branch === "main" };
}

/**
 * The version a CI build is stamped and tagged with, like `git describe`: the service's version, the branch and the
 * short commit (`2.0.0-main.1a2b3c4`), so builds from different branches or commits never share an image tag. Characters
 * a Docker tag cannot hold become `_` and the branch is cut to 64, so any branch name gives a valid tag.
 */
export function ciVersion(serviceVersion: string, branch: string, commit?: string): string {
  const safeBranch = branch.replace(/[^A-Za-z0-9_.-]/g, "_").slice(0, 64);
  return `${serviceVersion}-${safeBranch}${commit ? `.${commit.slice(0, 7)}` : ""}`;
}
