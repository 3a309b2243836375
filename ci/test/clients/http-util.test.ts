// The User-Agent every request of the ci module sends (ci/src/clients/http-util.ts).
import { describe, expect, it } from "vitest";
import { userAgent } from "../../src/clients/http-util.js";

describe("userAgent", () => {
  it("names the version as it is when it is a valid product-version token", () => {
    expect(userAgent("1.2.0")).toBe("dummyapp-ci/1.2.0");
    expect(userAgent("v1.2.0-3-gabc1234.dirty+meta")).toBe("dummyapp-ci/v1.2.0-3-gabc1234.dirty+meta");
  });

  // A git describe of a branch build, or a version given by hand, may hold characters a token cannot: "/" would
  // start a second product, spaces and commas split the header, CR/LF would inject one.
  it.each([
    ["v1.2.0-3-gabc/feature", "dummyapp-ci/v1.2.0-3-gabc_feature"],
    ["1.2, 3", "dummyapp-ci/1.2__3"],
    ["1.2 (beta)", "dummyapp-ci/1.2__beta_"],
    ["1.2\r\nX-Injected: yes", "dummyapp-ci/1.2__X-Injected__yes"],
    ["café", "dummyapp-ci/caf_"],
  ])("turns the characters of %j a token may not hold into _", (version, agent) => {
    expect(userAgent(version)).toBe(agent);
  });
});
