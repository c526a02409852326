import * as fs from 'node:fs';
import * as path from 'node:path';
import { Config, RouteConfig } from '../config/schema';
import { findElement, stringValue } from '../dicom/dataset';
import { DicomParseError } from '../dicom/errors';
import { T } from '../dicom/tags';
import { Engine } from '../deid/deidentify';
import { DeidStats } from '../deid/engine';
import type { OutgoingInstance } from '../forward/destination';
import { openInstance, outputBytes, outputSize, writeOutputFile } from '../io/instance-file';
import { hashRange, pixelHashOfBytes, pixelHashOfFile } from './pixel-hash';
import { settingsForRoute } from './route-settings';
import { selectRoutes } from './routing';

/** Export-job engines kept per worker (jobs running at once are few; older ones are rebuilt if needed). */
const JOB_ENGINES = 8;

export interface EntryTask {
  id: string;
  file: string;
  callingAE?: string;
  calledAE?: string;
  peer?: string;
  /** Set for export jobs: the job's route, taken whatever the routing rules say. */
  route?: RouteConfig;
  /**
   * The entry's outputs may come back in memory (RoutedOutput.bytes) up to this many bytes in
   * all; the others are written to files. 0 or absent: files only.
   */
  memoryBytes?: number;
}

/** A de-identified output: the instance to forward plus what the audit records about it. */
export interface RoutedOutput extends OutgoingInstance {
  route: string;
  kind: 'output';
  destinations: string[];
  profile: string;
  options: string[];
  stats: DeidStats;
  pixelSha256Before: string | null;
  pixelSha256After: string | null;
}

export type RouteResult = RoutedOutput | { route: string; kind: 'skip' | 'quarantine'; code: string; reason: string };

export type EntryResult =
  | { kind: 'routed'; results: RouteResult[]; originalStudyHash: string; originalSopHash: string }
  | { kind: 'dropped'; route: string | null; reason: string }
  | { kind: 'unreadable'; code: string; reason: string };

/**
 * The de-identify stage for one spooled instance (runs in a worker thread): routing, the
 * engine once per matched route, each output handed back in memory (within the task's
 * memoryBytes) or written to `outDir/<id>.<route>.dcm`, and the Pixel Data hashed before and
 * after, which must match.
 *
 * In memory is the common case: a file written here, read back for the pixel check, read
 * again by the destination and deleted was 4 file-system calls and 3 copies of the instance,
 * on a thread pool that the spool's commits (on the sender's wait) share.
 */
export class EntryProcessor {
  private readonly engines = new Map<string, Engine>();
  private readonly jobEngines = new Map<string, Engine>();

  constructor(private readonly config: Config, private readonly secret: Buffer, private readonly outDir: string, private readonly lookup?: ReadonlyMap<string, string>) {
    for (const route of config.routes) {
      if (!route.drop) this.engines.set(route.name, new Engine(settingsForRoute(route, config.pseudonyms, lookup), secret));
    }
  }

  process(task: EntryTask): EntryResult {
    let opened;
    try {
      opened = openInstance(task.file);
    } catch (err) {
      if (err instanceof DicomParseError) return { kind: 'unreadable', code: err.code, reason: err.message };
      throw err;
    }
    try {
      const ds = opened.instance.dataset;
      const routes = task.route
        ? [task.route]
        : selectRoutes(this.config.routes, this.config.routing, { callingAE: task.callingAE, calledAE: task.calledAE, peer: task.peer, elements: ds.elements, src: ds.src });
      if (routes.length === 0) return { kind: 'dropped', route: null, reason: 'no route matches' };
      if (routes.every((r) => r.drop)) return { kind: 'dropped', route: routes[0].name, reason: `route ${routes[0].name} drops it` };
      const text = (tag: number): string => {
        const el = findElement(ds.elements, tag);
        return el && !el.items ? stringValue(ds.src, el) : '';
      };
      const live = routes.filter((r) => !r.drop);
      const engineOf = (r: RouteConfig): Engine => (task.route ? this.jobEngine(task.route) : this.engines.get(r.name)!);
      const anyEngine = engineOf(live[0]);
      const room = { bytes: task.memoryBytes ?? 0 };
      const results = live.map((r) => this.runRoute(r, engineOf(r), task, opened.instance, room));
      return {
        kind: 'routed',
        results,
        originalStudyHash: anyEngine.pseudo.keyedHash(text(T.StudyInstanceUID)),
        originalSopHash: anyEngine.pseudo.keyedHash(text(T.SOPInstanceUID)),
      };
    } finally {
      opened.close();
    }
  }

  /**
   * The engine of an export job's route (a copy of a configured route, or the job's own profile
   * and destinations), built once per distinct route; the few most recent are kept.
   */
  private jobEngine(route: RouteConfig): Engine {
    const key = JSON.stringify(route);
    let engine = this.jobEngines.get(key);
    if (engine) {
      this.jobEngines.delete(key); // re-inserted below: most recently used last
    } else {
      engine = new Engine(settingsForRoute(route, this.config.pseudonyms, this.lookup), this.secret);
      if (this.jobEngines.size >= JOB_ENGINES) this.jobEngines.delete(this.jobEngines.keys().next().value as string);
    }
    this.jobEngines.set(key, engine);
    return engine;
  }

  private runRoute(route: RouteConfig, engine: Engine, task: EntryTask, instance: ReturnType<typeof openInstance>['instance'], room: { bytes: number }): RouteResult {
    const outcome = engine.process(instance);
    if (outcome.kind !== 'forward') return { route: route.name, kind: outcome.kind, code: outcome.code, reason: outcome.reason };
    const o = outcome.output;
    const before = o.pixelRange ? hashRange(instance.dataset.src, o.pixelRange.start, o.pixelRange.end) : null;
    const input = o.pixelRange && before ? { src: instance.dataset.src, ...o.pixelRange, sha256: before } : null;
    const size = outputSize(o.meta, o.parts);
    let where: { bytes: Buffer } | { file: string };
    let after: string | null;
    if (size <= room.bytes) {
      room.bytes -= size;
      const bytes = outputBytes(o.meta, o.parts);
      where = { bytes };
      after = pixelHashOfBytes(bytes, input);
    } else {
      // Flat names (no folder per entry): a mkdir and an rmdir per instance were measurable.
      const file = path.join(this.outDir, `${task.id}.${route.name.replace(/[^A-Za-z0-9._-]/g, '_')}.dcm`);
      // No fsync: this file is rebuilt from the spool if the process dies before forwarding it.
      writeOutputFile(file, o.meta, o.parts);
      where = { file };
      after = pixelHashOfFile(file, input);
      if (before !== after) fs.rmSync(file, { force: true });
    }
    if (before !== after) {
      return { route: route.name, kind: 'quarantine', code: 'PIXEL_MISMATCH', reason: 'Pixel Data of the output differs from the input' };
    }
    return {
      route: route.name,
      kind: 'output',
      ...where,
      destinations: route.destinations,
      profile: route.profile,
      options: route.options,
      sopClassUid: o.sopClassUid,
      sopInstanceUid: o.sopInstanceUid,
      studyUid: o.studyUid,
      seriesUid: o.seriesUid,
      transferSyntaxUid: o.transferSyntaxUid,
      patientPseudonym: o.patientPseudonym,
      stats: o.stats,
      pixelSha256Before: before,
      pixelSha256After: after,
    };
  }
}
