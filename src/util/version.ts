// The version both commands report (epochfs --version, epochfs-inspect --version): package.json's.
export const VERSION = '0.1.0';
