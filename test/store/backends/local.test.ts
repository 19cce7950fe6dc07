import { join } from 'node:path';
import { LocalBackend } from '../../../src/store/backends/local.js';
import { tempDir } from '../../helpers/env.js';
import { backendConformance } from '../backend-conformance.js';

backendConformance('local directory', async () => new LocalBackend(join(tempDir('backend'), 'store')));
