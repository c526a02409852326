import { PixelRisk } from './settings';

/**
 * SOP classes whose pixels very often carry burned-in identity: screenshots and scanned
 * documents (secondary capture), encapsulated documents, and ultrasound (patient name and
 * date are routinely burned into the image).
 */
const RISKY_SOP_CLASSES: ReadonlyMap<string, PixelRisk> = new Map<string, PixelRisk>([
  ['1.2.840.10008.5.1.4.1.1.7', 'secondary-capture'],
  ['1.2.840.10008.5.1.4.1.1.7.1', 'secondary-capture'],
  ['1.2.840.10008.5.1.4.1.1.7.2', 'secondary-capture'],
  ['1.2.840.10008.5.1.4.1.1.7.3', 'secondary-capture'],
  ['1.2.840.10008.5.1.4.1.1.7.4', 'secondary-capture'],
  ['1.2.840.10008.5.1.4.1.1.104.1', 'encapsulated-document'],
  ['1.2.840.10008.5.1.4.1.1.104.2', 'encapsulated-document'],
  ['1.2.840.10008.5.1.4.1.1.104.3', 'encapsulated-document'],
  ['1.2.840.10008.5.1.4.1.1.104.4', 'encapsulated-document'],
  ['1.2.840.10008.5.1.4.1.1.104.5', 'encapsulated-document'],
  ['1.2.840.10008.5.1.4.1.1.6', 'ultrasound'],
  ['1.2.840.10008.5.1.4.1.1.6.1', 'ultrasound'],
  ['1.2.840.10008.5.1.4.1.1.6.2', 'ultrasound'],
  ['1.2.840.10008.5.1.4.1.1.3', 'ultrasound'],
  ['1.2.840.10008.5.1.4.1.1.3.1', 'ultrasound'],
]);

export interface RiskFacts {
  sopClassUid: string;
  burnedInAnnotation: string | undefined;
  recognizableVisualFeatures: string | undefined;
}

/** The first pixel risk of an instance that the settings do not accept, with the reason. */
export function unacceptedRisk(facts: RiskFacts, accepted: ReadonlySet<PixelRisk>): { risk: PixelRisk; reason: string } | null {
  const found: { risk: PixelRisk; reason: string }[] = [];
  if (facts.burnedInAnnotation?.toUpperCase() === 'YES') found.push({ risk: 'burned-in-annotation', reason: 'BurnedInAnnotation (0028,0301) is YES' });
  if (facts.recognizableVisualFeatures?.toUpperCase() === 'YES') found.push({ risk: 'recognizable-visual-features', reason: 'RecognizableVisualFeatures (0028,0302) is YES' });
  const classRisk = RISKY_SOP_CLASSES.get(facts.sopClassUid);
  if (classRisk) found.push({ risk: classRisk, reason: `SOP class ${facts.sopClassUid} is in the ${classRisk} family, which often carries burned-in identity` });
  return found.find((f) => !accepted.has(f.risk)) ?? null;
}
