// Every relative link in the repository's Markdown resolves: the file exists and, with a #fragment, the heading does
// (GitHub's anchors: lower case, punctuation dropped, spaces to hyphens, -1, -2 … for repeats).
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = join(__dirname, "../..");
const files = execFileSync("git", ["ls-files", "--cached", "--others", "--exclude-standard", "*.md"], {
  cwd: ROOT,
  encoding: "utf8",
})
  .split("\n")
  .filter((file) => file && existsSync(join(ROOT, file)));

/** The anchors GitHub gives a Markdown file's headings (code blocks skipped). */
function anchorsOf(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  let fenced = false;
  for (const line of markdown.split("\n")) {
    if (/^(```|~~~)/.test(line)) fenced = !fenced;
    const heading = !fenced && /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!heading) continue;
    const slug = heading[1]!
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, "")
      .replace(/ /g, "-");
    const count = seen.get(slug) ?? 0;
    seen.set(slug, count + 1);
    anchors.add(count === 0 ? slug : `${slug}-${count}`);
  }
  return anchors;
}

/** Relative link targets in a Markdown file, outside code spans and blocks. */
function linksOf(markdown: string): string[] {
  const prose = markdown.replace(/^(```|~~~)[\s\S]*?^\1/gm, "").replace(/`[^`\n]*`/g, "");
  return [...prose.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]!).filter((t) => !/^[a-z][a-z0-9+.-]*:/i.test(t));
}

describe("Markdown links", () => {
  it("finds the documentation", () => {
    expect(files).toEqual(expect.arrayContaining(["README.md", "service/README.md", "ci/README.md", "ci/SETUP.md"]));
  });

  it("makes GitHub's anchors", () => {
    expect([...anchorsOf("# A `b` c\n## Setup (Heroku, Docker Hub)\n## A b c\n```\n# not\n```\n")]).toEqual([
      "a-b-c",
      "setup-heroku-docker-hub",
      "a-b-c-1",
    ]);
  });

  it.each(files)("%s: every relative link resolves", (file) => {
    const text = readFileSync(join(ROOT, file), "utf8");
    const broken = linksOf(text).filter((target) => {
      const [path, fragment] = target.split("#") as [string, string | undefined];
      const resolved = path ? join(ROOT, dirname(file), decodeURI(path)) : join(ROOT, file);
      if (!existsSync(resolved)) return true;
      if (fragment === undefined || statSync(resolved).isDirectory()) return false;
      return !anchorsOf(readFileSync(resolved, "utf8")).has(fragment);
    });
    expect(broken, `${relative(ROOT, join(ROOT, file))}`).toEqual([]);
  });
});
