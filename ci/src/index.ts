import { randomUUID } from "node:crypto";
import {
  argument,
  type Container,
  check,
  type Directory,
  dag,
  type File,
  func,
  type GitRepository,
  ImageMediaTypes,
  object,
  type Platform,
  type Secret,
  type Service,
} from "@dagger.io/dagger";
import { branchPlan, ciVersion } from "./branches.js";
import { DOCKER_MANIFEST_LIST, DOCKER_MANIFEST_V2, OCI_INDEX } from "./clients/oci-content.js";
import { bundle, PORT, poetryOf, runtime, SOURCE_IGNORE, sbomOf, testBench } from "./containers.js";
import {
  HEROKU_API_URL,
  HEROKU_APP,
  HEROKU_PROCESS_TYPE,
  HEROKU_REGISTRY,
  HEROKU_RELEASE_TIMEOUT_S,
  type HerokuTarget,
  releaseOnHeroku,
  validateHerokuTarget,
} from "./deploy.js";
import { isExecError } from "./exec-error.js";
import { BUILDER_IMAGE, POETRY_IMAGE, REGISTRY_IMAGE, RUNTIME_IMAGE } from "./image-refs.js";
import { imageLabels, SOURCE_URL } from "./labels.js";
import { preflight } from "./preflight.js";
import { PROBE_MAIN, PROBE_PATH, type SmokeExpectations } from "./probe.js";
import { type Invocation, slsaProvenance, validateCiRunUrl } from "./provenance.js";
import {
  DOCKER_HUB_PLATFORMS,
  DOCKER_HUB_REGISTRY,
  DOCKER_HUB_REPOSITORY,
  describePublished,
  type Published,
  publishVerifiable,
  type RegistryTarget,
} from "./publish.js";
import { type Pull, pullWith } from "./pull.js";
import {
  READBACK_ALIAS,
  READBACK_MAIN,
  REHEARSAL_HOST,
  type Readback,
  type RehearsalExpectation,
  verifyRehearsal,
} from "./rehearsal.js";
import { revisionOf, validateCommit } from "./revision.js";
import { requireSecrets } from "./secrets.js";
import { type BuildStamp, buildTimeOf, readServiceManifest, resolveImages } from "./stamp.js";
import { StepLog } from "./steps.js";
import { imageTags, parseBuildTags } from "./tags.js";

/**
 * dummyapp's pipeline, as Dagger functions: build the service into a minimal image with the poems merged in, test it,
 * serve it, smoke-test it, publish it to Docker Hub and release it on Heroku. `ci` runs them in order with the branch
 * rules, so a laptop and CircleCI take the same steps.
 */
@object()
export class Dummyapp {
  source: Directory;
  builderImage: string;
  runtimeImage: string;
  poetryImage: string;
  dockerhubUsername?: Secret;
  dockerhubPassword?: Secret;

  constructor(
    /** The repository: by default the one this module lives in, without dependencies, build output or git metadata. */
    @argument({ defaultPath: "/", ignore: SOURCE_IGNORE }) source: Directory,
    /** Image the service is built and tested in (Node.js LTS on Alpine: the steps install tools with apk). */
    builderImage: string = BUILDER_IMAGE,
    /** Base of the runtime image: Node.js without a shell, npm or compilers. */
    runtimeImage: string = RUNTIME_IMAGE,
    /** Data-only image whose files the service serves as poems. */
    poetryImage: string = POETRY_IMAGE,
    /** Docker Hub user to pull its images as (anonymous pulls are rate-limited per IP address); with the password. */
    dockerhubUsername?: Secret,
    /** Docker Hub password or access token for pulls, likewise. */
    dockerhubPassword?: Secret,
  ) {
    this.source = source;
    this.builderImage = builderImage;
    this.runtimeImage = runtimeImage;
    this.poetryImage = poetryImage;
    this.dockerhubUsername = dockerhubUsername;
    this.dockerhubPassword = dockerhubPassword;
  }

  /**
   * Build the service image: the bundle built natively, on the runtime base with the poems at /poetry and its SBOM at
   * /app/sbom.spdx.json, stamped with the commit and its time (never the wall clock). Cached per session: the poetry
   * image's tag is looked up afresh.
   *
   * Example: `dagger call build --tags heroku export --path=dummyapp.tar`
   *
   * @param git the git checkout: which commit a build is of (HEAD, `-dirty` with uncommitted changes) and when it was
   *   made; by default this repository's. Only the functions that stamp a build take it, so the others' cache keys do
   *   not change with `.git`
   * @param tags build tags (known: heroku); each changes the bundle and is recorded in the image's labels; default: none
   * @param version version to stamp; default: service/package.json's
   * @param platform platform of the image; default: the engine's
   * @param commit full commit SHA to stamp and label; default: the checkout's HEAD (`<sha>-dirty` with uncommitted changes)
   */
  @func({ cache: "session" })
  async build(
    @argument({ defaultPath: "/" }) git: GitRepository,
    tags: string[] = [],
    version?: string,
    platform?: Platform,
    commit?: string,
  ): Promise<Container> {
    const { stamp, pull } = await this.prepare(git, tags, version, commit);
    return this.image(stamp, pull, platform);
  }

  /**
   * The SBOM of the image `build` makes (SPDX 2.3 JSON, the same file the image holds at /app/sbom.spdx.json): every
   * npm package whose code is in the bundle, Node.js, the runtime base's Debian packages and the poems. Pushes nothing.
   * Cached per session, as build is.
   *
   * Example: `dagger call sbom --platform linux/arm64 export --path sbom.spdx.json`
   *
   * @param git the git checkout the build is stamped from, as for build; default: this repository's
   * @param tags build tags, as for build; default: none
   * @param version version to stamp; default: service/package.json's
   * @param platform platform of the image; default: the engine's
   * @param commit full commit SHA to stamp, as for build; default: the checkout's HEAD
   */
  @func({ cache: "session" })
  async sbom(
    @argument({ defaultPath: "/" }) git: GitRepository,
    tags: string[] = [],
    version?: string,
    platform?: Platform,
    commit?: string,
  ): Promise<File> {
    const { stamp, pull } = await this.prepare(git, tags, version, commit);
    return this.sbomFile(stamp, pull, platform ?? stamp.images.platform);
  }

  /**
   * The poems: the merged filesystem of a data-only image, never run. Cached per session, since the image is unpinned
   * on purpose (new poems are welcome): each `dagger call` looks its tag up again.
   *
   * Example: `dagger call poetry --image=registry.example.com/private-poems entries`
   *
   * @param image data image; default: the module's poetryImage
   */
  @func({ cache: "session" })
  async poetry(image?: string): Promise<Directory> {
    return poetryOf(image ?? this.poetryImage, await this.pull());
  }

  /**
   * Run the repository's tests (`npm test`: type-check, build, unit, HTTP and transcript tests) in the builder. Cached
   * (the engine's default, up to 7 days) for the same source: its inputs are the repository and pinned images.
   *
   * Example: `dagger call test`
   */
  @func()
  @check()
  async test(): Promise<string> {
    return this.runTests(await this.pull());
  }

  /**
   * The built image as a service on port 8080, started with its entrypoint. Cached per session, as build is.
   *
   * Example: `dagger call serve up --ports 8080:8080`
   *
   * @param git the git checkout the build is stamped from, as for build; default: this repository's
   * @param tags build tags, as for build; default: none
   */
  @func({ cache: "session" })
  async serve(@argument({ defaultPath: "/" }) git: GitRepository, tags: string[] = []): Promise<Service> {
    const { stamp, pull } = await this.prepare(git, tags);
    return this.image(stamp, pull).asService({ useEntrypoint: true });
  }

  /**
   * Start the built image and probe it from a client container: /healthz, /poetry/ lists the data image's poems,
   * /version reports the version and tags built, /metrics answers.
   *
   * Cached per session: a smoke test asked for runs (against the poetry image's current tag), and `dagger check`
   * runs it once.
   *
   * Example: `dagger call smoke --tags heroku`
   *
   * @param git the git checkout the build is stamped from, as for build; default: this repository's
   * @param tags build tags, as for build; default: none
   */
  @func({ cache: "session" })
  @check()
  async smoke(@argument({ defaultPath: "/" }) git: GitRepository, tags: string[] = []): Promise<string> {
    const { stamp, pull } = await this.prepare(git, tags);
    return this.smokeTest(stamp, pull);
  }

  /**
   * Publish the image, multi-arch, as `<version>[-<tags>]` (and `heroku` for a heroku build), each platform image with
   * an SBOM and a SLSA provenance attached as BuildKit attaches them, the index signed as cosign signs when a key is
   * given; then read it all back and check it. Before any container runs, checks that the credentials may push to
   * the repository (preflight.ts). Returns the references, all at the attested index's digest. Never cached: every
   * call pushes.
   *
   * Example: `dagger call publish --tag heroku --username env://DOCKERHUB_USER --password env://DOCKERHUB_PASS --signing-key env://COSIGN_KEY`
   *
   * @param git the git checkout the build is stamped from, as for build; default: this repository's
   * @param tag build tags, as for build; default: none
   * @param repository repository in the registry
   * @param registry registry host
   * @param username registry user; a Secret only so it can come from where the password does (env://…): the
   *   registry login takes it as plain text
   * @param password registry password or access token
   * @param version version to stamp and tag; default: service/package.json's
   * @param platforms platforms in the image index; default: linux/amd64, linux/arm64
   * @param signingKey PEM ECDSA P-256 private key (unencrypted; e.g. env://COSIGN_KEY) to sign the index with, as
   *   cosign does; without it the image is published unsigned
   * @param ciRunUrl the CI run's page (CircleCI's CIRCLE_BUILD_URL), recorded in the provenance
   */
  @func({ cache: "never" })
  async publish(
    @argument({ defaultPath: "/" }) git: GitRepository,
    tag: string[] = [],
    repository: string = DOCKER_HUB_REPOSITORY,
    registry: string = DOCKER_HUB_REGISTRY,
    username?: Secret,
    password?: Secret,
    version?: string,
    platforms: string[] = DOCKER_HUB_PLATFORMS,
    signingKey?: Secret,
    ciRunUrl?: string,
  ): Promise<string[]> {
    const invocation = invocationOf("publish", { tag, repository, registry, version, platforms }, ciRunUrl);
    const credentials = requireSecrets("publish", { username, password });
    const buildTags = parseBuildTags(tag);
    // The tags are checked before any image is pulled or resolved, and the credentials before any container runs.
    const release = version ?? (await readServiceManifest(this.source)).version;
    const tags = imageTags(release, buildTags);
    const target: RegistryTarget = {
      registry,
      repository,
      ...credentials,
      platforms: platforms as Platform[],
      signingKey,
    };
    await preflight({ registry: { target, flags: "--username/--password" }, version: release });
    // Pushing to Docker Hub, its credentials serve the pulls too.
    const pull = await (registry === DOCKER_HUB_REGISTRY ? this.pull(username, password) : this.pull());
    const stamp = await this.stamp(git, buildTags, pull, version);
    const published = await this.publishStamp(stamp, tags, target, pull, invocation);
    console.log(describePublished(published));
    return published.references;
  }

  /**
   * Rehearse the publish with no credentials: both variants pushed as `publish` pushes them (one linux/amd64 +
   * linux/arm64 index each) and the heroku variant as `deploy-heroku` pushes it (one linux/amd64 Docker manifest), to
   * a registry (the official image, pinned by digest) run as a service inside the engine; then read back from it:
   * each index's platforms and every image's version, revision and build-tags labels, and the Heroku image's media
   * type. Cached per session, as build is; a check, so `dagger check` proves the publish path.
   *
   * Example: `dagger call rehearse-publish`
   *
   * @param git the git checkout the build is stamped from, as for build; default: this repository's
   */
  @func({ cache: "session" })
  @check()
  async rehearsePublish(@argument({ defaultPath: "/" }) git: GitRepository): Promise<string> {
    const { stamp, pull } = await this.prepare(git, []);
    const variants = [stamp, { ...stamp, buildTags: ["heroku"] }];
    // The registry keeps its storage in a cache volume: the service is started for each push and for the reading.
    const registry = pull(REGISTRY_IMAGE)
      .withMountedCache("/var/lib/registry", dag.cacheVolume("dummyapp-publish-rehearsal"))
      .withExposedPort(5000)
      .asService({ useEntrypoint: true });
    const [repository, herokuRepository] = [DOCKER_HUB_REPOSITORY, `${HEROKU_APP}/${HEROKU_PROCESS_TYPE}`];
    const tags = variants.map((variant) => imageTags(variant.version, variant.buildTags)[0]!);
    await Promise.all([
      ...variants.map((variant, i) =>
        dag.container().publish(`${REHEARSAL_HOST}/${repository}:${tags[i]}`, {
          platformVariants: DOCKER_HUB_PLATFORMS.map((platform) => this.image(variant, pull, platform as Platform)),
          registryService: registry,
        }),
      ),
      this.image(variants[1]!, pull, "linux/amd64" as Platform).publish(
        `${REHEARSAL_HOST}/${herokuRepository}:latest`,
        {
          mediaTypes: ImageMediaTypes.Docker,
          registryService: registry,
        },
      ),
    ]);
    const requests = [
      ...tags.map((reference) => ({ repository, reference })),
      { repository: herokuRepository, reference: "latest" },
    ];
    const read = await pull(this.builderImage)
      .withServiceBinding(READBACK_ALIAS, registry)
      .withExec([
        "node",
        "--input-type=module",
        "--eval",
        READBACK_MAIN,
        `http://${READBACK_ALIAS}:5000`,
        JSON.stringify(requests),
      ])
      .stdout();
    const labelsOf = (variant: BuildStamp) => ({
      "org.opencontainers.image.version": variant.version,
      "org.opencontainers.image.revision": variant.commit,
      "com.pennock-tech.dummyapp.build-tags": variant.buildTags.join(","),
    });
    const expected: RehearsalExpectation[] = [
      ...variants.map((variant, i) => ({
        reference: `${repository}:${tags[i]}`,
        mediaTypes: [OCI_INDEX, DOCKER_MANIFEST_LIST],
        platforms: DOCKER_HUB_PLATFORMS,
        labels: labelsOf(variant),
      })),
      {
        reference: `${herokuRepository}:latest`,
        mediaTypes: [DOCKER_MANIFEST_V2],
        platforms: ["linux/amd64"],
        labels: labelsOf(variants[1]!),
      },
    ];
    return verifyRehearsal(JSON.parse(read) as Readback[], expected);
  }

  /**
   * Release the heroku build on Heroku: push a linux/amd64 image to Heroku's registry, release its image id through
   * the Platform API and follow the release. The token and the app are checked before any container runs
   * (preflight.ts). Never cached: every call releases.
   *
   * Example: `dagger call deploy-heroku --token env://HEROKU_TOKEN --commit $(git rev-parse HEAD)`
   *
   * @param git the git checkout the build is stamped from, as for build; default: this repository's
   * @param app Heroku app (Cedar generation, container stack)
   * @param token Heroku API token: registry password and Platform API bearer token
   * @param processType process type to run the image as
   * @param apiUrl Platform API base URL
   * @param registry Heroku's registry host
   * @param verifyUrl the app's URL to probe; default: its web URL from the Platform API. Waits until its /version
   *   reports the commit built
   * @param version version to stamp; default: service/package.json's
   * @param commit full commit SHA to stamp, and to wait for with verifyUrl; default: the checkout's HEAD
   * @param rollback when the release succeeds but /version does not report the commit in time, roll back to the
   *   release that was current before (a failed or still pending release is reported, never rolled back)
   * @param releaseTimeout seconds to follow the release before reporting it still pending, 60 to 7200; the default
   *   covers Heroku's 1 h limit on the release phase
   */
  @func({ cache: "never" })
  async deployHeroku(
    @argument({ defaultPath: "/" }) git: GitRepository,
    app: string = HEROKU_APP,
    token: Secret,
    processType: string = HEROKU_PROCESS_TYPE,
    apiUrl: string = HEROKU_API_URL,
    registry: string = HEROKU_REGISTRY,
    verifyUrl?: string,
    version?: string,
    commit?: string,
    rollback: boolean = true,
    releaseTimeout: number = HEROKU_RELEASE_TIMEOUT_S,
  ): Promise<string> {
    const target: HerokuTarget = {
      app,
      processType,
      apiUrl,
      registry,
      verifyUrl,
      commit,
      rollback,
      releaseTimeout,
      ...requireSecrets("deploy-heroku", { token }),
    };
    validateHerokuTarget(target);
    const release = version ?? (await readServiceManifest(this.source)).version;
    await preflight({ heroku: { target, flags: "--token" }, version: release });
    const { stamp, pull } = await this.prepare(git, ["heroku"], version, commit);
    return this.herokuRelease(stamp, { ...target, commit: stamp.commit }, pull);
  }

  /**
   * The whole pipeline with the branch rules: test alongside build → smoke, then (both passed) publish to Docker Hub
   * unless the branch name contains `nohub`, then deploy to Heroku on master or main. Builds and publishes both
   * variants (plain and heroku); returns one line per step, in that order. Never cached: every call runs every step
   * it asks for. Before any container runs, the Docker Hub credentials and the Heroku token and app are checked for
   * the steps the branch will run (preflight.ts), so a wrong one fails in seconds.
   *
   * Example: `dagger call ci --branch main --commit $(git rev-parse HEAD) --dockerhub-username env://DOCKERHUB_USER --dockerhub-password env://DOCKERHUB_PASS --heroku-token env://HEROKU_TOKEN`
   *
   * @param git the git checkout the build is stamped from, as for build; default: this repository's
   * @param branch branch being built (CircleCI's CIRCLE_BRANCH)
   * @param commit full SHA of the commit being built (CircleCI's CIRCLE_SHA1); default: the checkout's HEAD
   * @param dockerhubUsername Docker Hub user, needed unless the branch skips publishing
   * @param dockerhubPassword Docker Hub password or access token, likewise
   * @param herokuToken Heroku API token, needed on master and main
   * @param herokuApp Heroku app to deploy to
   * @param signingKey PEM ECDSA P-256 private key to sign the published indexes with, as for publish
   * @param ciRunUrl the CI run's page (CircleCI's CIRCLE_BUILD_URL), recorded in the provenance
   * @param forkPullRequest the run is of a pull request from a fork, which CI gives no secrets: test, build and smoke
   *   only, publish and deploy skipped saying why
   */
  @func({ cache: "never" })
  async ci(
    @argument({ defaultPath: "/" }) git: GitRepository,
    branch: string,
    commit?: string,
    dockerhubUsername?: Secret,
    dockerhubPassword?: Secret,
    herokuToken?: Secret,
    herokuApp: string = HEROKU_APP,
    signingKey?: Secret,
    ciRunUrl?: string,
    forkPullRequest: boolean = false,
  ): Promise<string> {
    // Everything that can be refused is refused before the first container runs.
    const invocation = invocationOf("ci", { branch, commit, herokuApp }, ciRunUrl);
    const plan = forkPullRequest ? { publish: false, deploy: false } : branchPlan(branch);
    validateCommit(commit);
    requireSecrets(`ci on branch ${branch}`, {
      ...(plan.publish ? { dockerhubUsername, dockerhubPassword } : {}),
      ...(plan.deploy ? { herokuToken } : {}),
    });
    const hub: RegistryTarget | undefined = plan.publish
      ? {
          registry: DOCKER_HUB_REGISTRY,
          repository: DOCKER_HUB_REPOSITORY,
          platforms: DOCKER_HUB_PLATFORMS as Platform[],
          username: dockerhubUsername!,
          password: dockerhubPassword!,
          signingKey,
        }
      : undefined;
    const heroku: HerokuTarget | undefined = plan.deploy
      ? {
          app: herokuApp,
          processType: HEROKU_PROCESS_TYPE,
          apiUrl: HEROKU_API_URL,
          registry: HEROKU_REGISTRY,
          token: herokuToken!,
          commit,
          rollback: true,
        }
      : undefined;
    if (heroku) validateHerokuTarget(heroku);
    // The version needs only the commit (its first 7 digits: never "-dirty"), which the Git API gives with no container.
    const [manifest, head] = await Promise.all([readServiceManifest(this.source), commit ?? git.head().commit()]);
    const version = ciVersion(manifest.version, branch, head);
    // Only the steps this branch runs are checked.
    await preflight({
      registry: hub && { target: hub, flags: "--dockerhub-username/--dockerhub-password" },
      heroku: heroku && { target: heroku, flags: "--heroku-token" },
      version,
    });
    const pull = await this.pull(
      dockerhubUsername ?? this.dockerhubUsername,
      dockerhubPassword ?? this.dockerhubPassword,
    );
    const [revision, images] = await Promise.all([
      revisionOf(git, pull(this.builderImage), commit),
      this.resolveImages(pull),
    ]);
    const variants = [[], ["heroku"]].map(
      (buildTags): BuildStamp => ({ manifest, buildTags, version, ...revision, images }),
    );
    // Only a deployed branch moves the `:heroku` alias; other branches publish their own tags alone.
    const tags = variants.map((stamp) => imageTags(version, stamp.buildTags, plan.deploy));

    const log = new StepLog(`dummyapp ci: branch ${branch}, version ${version}`, CI_STEPS);
    // The tests need no image and the image needs no tests: test runs alongside build → smoke (about 2½ minutes saved
    // on a 2-core machine), and nothing is published until both have passed.
    await log.together([
      () =>
        log.run(
          "test",
          () => this.runTests(pull),
          () => "passed",
        ),
      async () => {
        await log.run(
          "build",
          () => Promise.all(variants.map((stamp) => this.image(stamp, pull).sync())),
          () => `built ${tags.map(([main]) => main).join(", ")}`,
        );
        await log.run(
          "smoke",
          () => Promise.all(variants.map((stamp) => this.smokeTest(stamp, pull))),
          () => "passed",
        );
      },
    ]);
    if (hub) {
      const publishAll = () =>
        Promise.all(variants.map((stamp, i) => this.publishStamp(stamp, tags[i]!, hub, pull, invocation)));
      await log.run("publish", publishAll, (published) => published.map(describePublished).join("; "));
    } else {
      log.skip("publish", forkPullRequest ? FORK_SKIP : 'branch name contains "nohub"');
    }
    if (heroku) {
      const stamp = variants[1]!;
      await log.run(
        "deploy",
        () => this.herokuRelease(stamp, { ...heroku, commit: stamp.commit }, pull),
        (report) => report,
      );
    } else {
      log.skip("deploy", forkPullRequest ? FORK_SKIP : "only master and main deploy");
    }
    return log.toString();
  }

  /**
   * Pulls, logged in to Docker Hub with the module's credentials or the ones given; refuses one without the other
   * before any work.
   */
  private async pull(username = this.dockerhubUsername, password = this.dockerhubPassword): Promise<Pull> {
    if (!username !== !password)
      throw new Error("Docker Hub pulls need both --dockerhub-username and --dockerhub-password");
    return pullWith(username && password ? { username: await username.plaintext(), password } : undefined);
  }

  /** `npm test` in the test bench; its output. */
  private runTests(pull: Pull): Promise<string> {
    return testBench(this.source, this.builderImage, pull).withExec(["npm", "test"]).stdout();
  }

  /** A build's stamp for `tags` (checked first: a bad one fails before any query) and the pulls to build it with. */
  private async prepare(
    git: GitRepository,
    tags: string[],
    version?: string,
    commit?: string,
  ): Promise<{ stamp: BuildStamp; pull: Pull }> {
    const buildTags = parseBuildTags(tags);
    validateCommit(commit);
    const pull = await this.pull();
    return { stamp: await this.stamp(git, buildTags, pull, version, commit), pull };
  }

  /** The stamp for one build: the manifest's name and version, the revision with its time, the images resolved. */
  private async stamp(
    git: GitRepository,
    buildTags: string[],
    pull: Pull,
    version?: string,
    commit?: string,
  ): Promise<BuildStamp> {
    const [manifest, revision, images] = await Promise.all([
      readServiceManifest(this.source),
      revisionOf(git, pull(this.builderImage), commit),
      this.resolveImages(pull),
    ]);
    return { manifest, buildTags, version: version ?? manifest.version, ...revision, images };
  }

  /** The module's images, resolved to digests. */
  private resolveImages(pull: Pull) {
    return resolveImages(pull, { builder: this.builderImage, runtime: this.runtimeImage, poetry: this.poetryImage });
  }

  /** The runtime image for a stamp; the JS is built on the native platform whatever `platform` is. */
  private image(stamp: BuildStamp, pull: Pull, platform?: Platform): Container {
    return runtime({
      image: this.runtimeImage,
      platform,
      pull,
      poetry: poetryOf(this.poetryImage, pull),
      bundle: bundle(this.source, this.builderImage, stamp, pull),
      labels: imageLabels(stamp, { runtime: this.runtimeImage, poetry: this.poetryImage }),
      sbom: this.sbomFile(stamp, pull, platform ?? stamp.images.platform),
      sourceDateEpoch: stamp.sourceDateEpoch,
    });
  }

  /** The SBOM of the runtime image for a stamp and platform (containers.ts sbomOf). */
  private sbomFile(stamp: BuildStamp, pull: Pull, platform: Platform): File {
    return sbomOf({
      builder: pull(this.builderImage),
      source: this.source,
      bundle: bundle(this.source, this.builderImage, stamp, pull),
      runtimeBase: pull(this.runtimeImage, platform),
      poetry: poetryOf(this.poetryImage, pull),
      params: {
        name: stamp.manifest.name,
        version: stamp.version,
        commit: stamp.commit,
        created: buildTimeOf(stamp.sourceDateEpoch),
        platform,
        nodeVersion: stamp.images.nodeVersion,
        runtimeImage: stamp.images.runtime,
        poetryImage: stamp.images.poetry,
        sourceUrl: SOURCE_URL,
        workspace: "service",
      },
    });
  }

  /** Runs the image as a service and the probes (probe.ts) against it from a client container. */
  private async smokeTest(stamp: BuildStamp, pull: Pull): Promise<string> {
    const poems = await poetryOf(this.poetryImage, pull).entries();
    const expected: SmokeExpectations = { version: stamp.version, buildTags: stamp.buildTags, poems };
    try {
      return await pull(this.builderImage)
        .withServiceBinding("app", this.image(stamp, pull).asService({ useEntrypoint: true }))
        .withFile(PROBE_PATH, this.source.file("ci/src/probe.ts"))
        // The probe's inputs are otherwise fixed for one image: without a run id the engine would answer a repeated
        // smoke from its cache, never starting the service.
        .withEnvVariable("SMOKE_RUN_ID", randomUUID())
        .withExec(["node", "--input-type=module", "--eval", PROBE_MAIN, `http://app:${PORT}`, JSON.stringify(expected)])
        .stdout();
    } catch (err) {
      if (isExecError(err)) throw new Error(`smoke test failed: ${err.stderr.trim()}`);
      throw err;
    }
  }

  /** One multi-arch index under every tag, with its attestations (and signature), checked after the push. */
  private async publishStamp(
    stamp: BuildStamp,
    tags: string[],
    target: RegistryTarget,
    pull: Pull,
    invocation: Invocation,
  ): Promise<Published> {
    const engineVersion = await dag.version();
    return publishVerifiable({
      buildFor: (platform) => ({
        image: this.image(stamp, pull, platform),
        sbom: this.sbomFile(stamp, pull, platform),
      }),
      tags,
      target,
      version: stamp.version,
      provenanceFor: async (platform) =>
        slsaProvenance({
          ...invocation,
          commit: stamp.commit,
          version: stamp.version,
          buildTags: stamp.buildTags,
          platform,
          sourceDateEpoch: stamp.sourceDateEpoch,
          images: stamp.images,
          engineVersion,
          finishedOn: new Date().toISOString(),
        }),
    });
  }

  /** The heroku build for linux/amd64 only (what Heroku runs), released by deploy.ts. */
  private herokuRelease(stamp: BuildStamp, target: HerokuTarget, pull: Pull): Promise<string> {
    return releaseOnHeroku(this.image(stamp, pull, "linux/amd64" as Platform), target, stamp.version);
  }
}

/** Why a fork's pull request neither publishes nor deploys. */
const FORK_SKIP = "a pull request from a fork gets no secrets";

/** The steps of `ci`, in the order its log prints them. */
const CI_STEPS = ["test", "build", "smoke", "publish", "deploy"] as const;

/** What the provenance records of a call: its function, its arguments (never a secret), the CI run, when it began. */
function invocationOf(name: string, args: Record<string, unknown>, ciRunUrl: string | undefined): Invocation {
  validateCiRunUrl(ciRunUrl);
  const given = Object.fromEntries(Object.entries(args).filter(([, value]) => value !== undefined));
  return { function: name, arguments: given, ciRunUrl, startedOn: new Date().toISOString() };
}
