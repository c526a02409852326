import type { SourceConfig } from '../../config/schema';
import type { SecretSource } from '../../forward/destination';
import type { ExportSource } from '../types';

/** The gateway's own DIMSE identity, the defaults of a DIMSE source's AE titles. */
export interface GatewayIdentity {
  aeTitle: string;
}

export function createSource(name: string, cfg: SourceConfig, secrets: SecretSource, gateway: GatewayIdentity): ExportSource {
  switch (cfg.type) {
    case 'dicomweb': {
      // Required lazily, like the destinations: a deployment without sources loads neither.
      const { DicomwebSource } = require('./dicomweb-source') as typeof import('./dicomweb-source');
      return new DicomwebSource(name, cfg, secrets);
    }
    case 'dimse': {
      const { DimseSource } = require('./dimse-source') as typeof import('./dimse-source');
      return new DimseSource(name, cfg, { callingAeTitle: gateway.aeTitle, moveDestination: gateway.aeTitle });
    }
  }
}
