/**
 * The runtime SDK: `Sandbox.create(...)` and its operations. Only record
 * mode exists so far: with MVM_SDK_MODE=record every call is recorded and
 * the recording is written to MVM_SDK_OUT_PATH when the process exits
 * (docs/recording.md). Nothing is executed in record mode.
 */

import { SandboxError } from "./errors.js";
import { type SandboxOptions, runOp, sandboxSpec, session, writeOp } from "./recording.js";

export type { SandboxOptions };

/** What commands.run/start return in record mode: the command was recorded, not run. */
export class CommandHandle {
  /** Record mode runs nothing, so there is no output or exit status to report. */
  readonly recorded = true;
  constructor(
    readonly cmd: string | string[],
    readonly background: boolean,
  ) {}
}

export class Commands {
  constructor(private readonly sandbox: Sandbox) {}

  /** Run `cmd` (a shell line or an argv array) and wait for it. */
  async run(cmd: string | string[]): Promise<CommandHandle> {
    return this.sandbox.record(runOp(cmd, false));
  }

  /** Start `cmd` in the background (e.g. a server). */
  async start(cmd: string | string[]): Promise<CommandHandle> {
    return this.sandbox.record(runOp(cmd, true));
  }
}

export class Files {
  constructor(private readonly sandbox: Sandbox) {}

  /** Write `data` (strings are UTF-8 encoded) to the absolute guest `path`. */
  async write(path: string, data: string | Uint8Array): Promise<void> {
    this.sandbox.record(writeOp(path, data));
  }
}

/** One sandbox microVM. Create it with `await Sandbox.create({...})`. */
export class Sandbox {
  readonly commands = new Commands(this);
  readonly files = new Files(this);
  #killed = false;

  private constructor(private readonly spec: any) {}

  static async create(opts: SandboxOptions = {}): Promise<Sandbox> {
    const mode = process.env.MVM_SDK_MODE ?? "";
    if (mode !== "record") {
      throw new SandboxError(
        `the runtime SDK's live mode is not available yet (MVM_SDK_MODE=${JSON.stringify(mode)}); ` +
          "run this script with MVM_SDK_MODE=record (mvmctl compile --from-recording) " +
          "or manage instances with mvmctl up / exec / down",
      );
    }
    const spec = sandboxSpec(opts);
    session().sandboxes.push(spec);
    return new Sandbox(spec);
  }

  /** @internal Append one operation; refused after kill. */
  record(op: any): CommandHandle {
    if (this.#killed) throw new SandboxError("this sandbox was killed; create a new one with Sandbox.create(...)");
    this.spec.operations.push(op);
    return new CommandHandle(op.cmd, op.background);
  }

  /** Stop the sandbox. Killing twice is allowed and records one kill. */
  async kill(): Promise<void> {
    if (!this.#killed) {
      this.#killed = true;
      this.spec.operations.push({ op: "kill" });
    }
  }

  /** `await using sb = await Sandbox.create(...)` kills it at the end of the block. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.kill();
  }
}
