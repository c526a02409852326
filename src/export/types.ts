/**
 * The contract between export jobs (src/export/job-*.ts) and the places they pull from
 * (src/export/sources/*). A source finds studies, series and instances on a clinical PACS and
 * retrieves them into a sink (the spool); it never de-identifies and never logs.
 *
 * Original identifiers (UIDs, patient IDs, accession numbers) pass through these types because
 * the PACS needs them; the job layer turns them into keyed hashes before anything is persisted
 * in a job record, an audit entry or an API answer.
 */

/** What a research data manager asks for. Every list is OR-ed; the fields are AND-ed. */
export interface ExportQuery {
  patientIds?: string[];
  accessionNumbers?: string[];
  studyUids?: string[];
  /** Inclusive, YYYYMMDD; either end may be missing. */
  studyDate?: { from?: string; to?: string };
  /** A study matches when it has any of these modalities. */
  modalitiesInStudy?: string[];
  /** DICOM wildcard pattern (`*` any run, `?` one character), case-insensitive. */
  studyDescription?: string;
}

export interface StudyRef {
  studyUid: string;
  patientId?: string;
  accessionNumber?: string;
  studyDate?: string;
  studyDescription?: string;
  modalities?: string[];
  /** As reported by the PACS (NumberOfStudyRelatedInstances); may be absent or wrong. */
  numberOfInstances?: number;
}

export interface SeriesRef {
  studyUid: string;
  seriesUid: string;
  modality?: string;
  numberOfInstances?: number;
}

export interface InstanceRef {
  studyUid: string;
  seriesUid: string;
  sopInstanceUid: string;
  sopClassUid?: string;
}

/** The spool side of a retrieve: one writer per instance, bytes of a Part 10 file. */
export interface RetrieveSink {
  /** Opens a writer for the next retrieved instance (a Part 10 file, preamble and meta included). */
  open(): InstanceWriter;
}

export interface InstanceWriter {
  write(chunk: Buffer): void;
  /**
   * Makes the instance durable in the spool. Resolves with 'stored' or 'quarantined' (the bytes
   * were kept but are not a readable instance); rejects only when the spool itself failed.
   */
  commit(): Promise<'stored' | 'quarantined'>;
  abort(): Promise<void>;
}

/** What one retrieve call did. */
export interface RetrieveResult {
  /** Instances committed to the sink (stored or quarantined). */
  received: number;
  /** Instances the source reported as failed (C-MOVE/C-GET failed sub-operations, WADO-RS bad parts). */
  failed: number;
}

export interface RetrieveProgress {
  /** Pending-response counters (C-MOVE/C-GET) or parts seen so far (WADO-RS). */
  completed: number;
  remaining?: number;
  failed: number;
}

export interface RetrieveOptions {
  signal?: AbortSignal;
  onProgress?: (p: RetrieveProgress) => void;
}

/**
 * A network failure, a timeout or a 5xx/0xA7xx-like answer: worth retrying later. Anything
 * else thrown by a source (SourceError with transient=false) means the request itself is wrong
 * (4xx, refused association) and retrying will not help.
 */
export class SourceError extends Error {
  constructor(message: string, readonly transient: boolean, readonly status?: number) {
    super(message);
    this.name = 'SourceError';
  }
}

export interface ExportSource {
  readonly name: string;
  /**
   * 'sink': retrieved bytes are written to the RetrieveSink given to retrieve*(). 'c-move': the
   * PACS sends them to the gateway's own SCP (C-MOVE destination); the sink is not used and the
   * caller attributes arriving instances to the job by their SOP Instance UIDs.
   */
  readonly delivery: 'sink' | 'c-move';
  /** Studies matching the query (each study once, whatever the number of list values). */
  findStudies(query: ExportQuery, signal?: AbortSignal): Promise<StudyRef[]>;
  findSeries(studyUid: string, signal?: AbortSignal): Promise<SeriesRef[]>;
  findInstances(studyUid: string, seriesUid: string, signal?: AbortSignal): Promise<InstanceRef[]>;
  /** Retrieves a whole series into the sink (WADO-RS series, C-MOVE/C-GET at SERIES level). */
  retrieveSeries(series: SeriesRef, sink: RetrieveSink, opts?: RetrieveOptions): Promise<RetrieveResult>;
  /** Retrieves single instances (used to finish a series interrupted by a crash). */
  retrieveInstances(instances: InstanceRef[], sink: RetrieveSink, opts?: RetrieveOptions): Promise<RetrieveResult>;
  /** A cheap reachability check (QIDO with limit=1, or C-ECHO). */
  probe(signal?: AbortSignal): Promise<void>;
  close(): Promise<void>;
}
