/**
 * Which commit a build is of, and when that commit was made: the stamp's `commit` and its time (the
 * SOURCE_DATE_EPOCH convention; Go stamps `vcs.time` the same way), so a build never reads the wall clock.
 */
import type { Container, GitRepository } from "@dagger.io/dagger";

/** A full commit SHA: what the engine's `GitRepository.commit` takes (core/schema/git.go refuses anything else). */
const COMMIT_SHA = /^[0-9a-f]{40}$/;

/** Throws on a `--commit` the engine would refuse, before any work. */
export function validateCommit(commit: string | undefined): void {
  if (commit !== undefined && !COMMIT_SHA.test(commit)) {
    throw new Error(`--commit "${commit}" is not a full commit SHA: give all 40 hex digits (git rev-parse HEAD)`);
  }
}

/** A commit and its committer time. */
export interface Revision {
  /** The commit SHA; `<sha>-dirty` when the working tree has changes not committed. */
  commit: string;
  /** Committer time, seconds since the epoch. */
  sourceDateEpoch: number;
}

/**
 * The revision to stamp: `commit` when given (CircleCI passes it; stamped as given, the tree trusted to be it), else
 * the checkout's HEAD, marked `-dirty` when the tree has uncommitted changes. The Git API has no commit time, so `git log` reads it from the commit's tree (which
 * keeps its `.git`) in `alpine` (an Alpine container, given git).
 */
export async function revisionOf(git: GitRepository, alpine: Container, commit?: string): Promise<Revision> {
  const ref = commit ? git.commit(commit) : git.head();
  const [sha, clean] = await Promise.all([commit ?? ref.commit(), commit ? true : git.uncommitted().isEmpty()]);
  const time = await alpine
    .withExec(["apk", "add", "--no-cache", "git"])
    .withMountedDirectory("/repo", ref.tree())
    .withExec(["git", "-c", "safe.directory=*", "-C", "/repo", "log", "-1", "--format=%ct"])
    .stdout();
  const sourceDateEpoch = Number(time.trim());
  if (!Number.isSafeInteger(sourceDateEpoch) || sourceDateEpoch <= 0)
    throw new Error(`git log gave no commit time for ${sha}: ${JSON.stringify(time)}`);
  return { commit: clean ? sha : `${sha}-dirty`, sourceDateEpoch };
}
