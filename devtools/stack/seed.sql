-- devtools/stack/seed.sql — bulk-seed Mattermost users by copying one template
-- user's rows (created through the API, so its rows are exactly what the server
-- writes). Idempotent: rows that already exist (same username/email) are skipped.
--
-- psql variables (set by stack.sh):
--   template_id   id of the template user (index 0 of the name sequence)
--   seed_users    number of active seeded users wanted (including the template)
--   email_domain  e.g. contoso.example
--   team_id       id of the team every seeded user belongs to
\set ON_ERROR_STOP on

BEGIN;

CREATE TEMP TABLE seed_first(i int, name text) ON COMMIT DROP;
INSERT INTO seed_first(i, name)
SELECT ord - 1, n FROM unnest(ARRAY[
  'Aaliyah','Aarav','Abigail','Adebayo','Aiko','Alejandro','Alexander','Amara','Amelia','Ana',
  'Andrei','Anja','Arjun','Astrid','Ayesha','Beatriz','Benjamin','Bianca','Björn','Camila',
  'Carlos','Charlotte','Chen','Chloé','Daniel','Dmitri','Elena','Elif','Emeka','Emily',
  'Emma','Erik','Fatima','Felipe','Finn','Freya','Gabriel','Grace','Hana','Hannah',
  'Hiroshi','Hugo','Ibrahim','Ingrid','Isabella','Ivan','Jack','James','Jana','Javier',
  'Ji-woo','João','Julia','Kai','Kateryna','Kenji','Kofi','Lars','Laura','Leila',
  'Leon','Liam','Lucas','Lucía','Magnus','Maria','Mateo','Maya','Mei','Mohammed',
  'Nadia','Naomi','Nikhil','Nina','Noah','Olivia','Omar','Oscar','Paolo','Priya',
  'Rafael','Rahul','Rania','Ravi','Rosa','Sakura','Samuel','Sara','Sebastian','Sofia',
  'Sophie','Sven','Tariq','Thomas','Valentina','Victor','Wei','William','Yara','Yusuf',
  'Zainab','Zoë','Ethan','Olga','Patrick','Siobhan','Tomasz','Lena','Mehmet','Ines'
]) WITH ORDINALITY AS t(n, ord);

CREATE TEMP TABLE seed_last(i int, name text) ON COMMIT DROP;
INSERT INTO seed_last(i, name)
SELECT ord - 1, n FROM unnest(ARRAY[
  'Abbott','Adeyemi','Ahmed','Alvarez','Andersen','Anderson','Bailey','Baker','Bauer','Becker',
  'Bennett','Brooks','Brown','Campbell','Castillo','Chen','Clarke','Costa','Cruz','Davies',
  'Dubois','Dubey','Edwards','Eriksson','Evans','Fernández','Fischer','Fitzgerald','Garcia','Gonzalez',
  'Gupta','Hansen','Harris','Hoffmann','Hughes','Ivanova','Jackson','Jansen','Jensen','Johansson',
  'Johnson','Kaur','Kelly','Khan','Kim','Kowalski','Kumar','Larsen','Lee','Lindqvist',
  'Lopez','MacDonald','Martin','Martínez','Meyer','Miller','Moreau','Morris','Müller','Murphy',
  'Nakamura','Nguyen','Nielsen','Novak','O''Brien','Okafor','Olsen','Ortiz','Park','Patel',
  'Pereira','Petrov','Ramirez','Reyes','Richter','Rossi','Russo','Santos','Sato','Schmidt',
  'Schneider','Silva','Singh','Smith','Sousa','Suzuki','Svensson','Tanaka','Taylor','Thompson',
  'Torres','Wagner','Walker','Wang','Watanabe','Weber','Williams','Wilson','Wright','Yamamoto',
  'Yilmaz','Young','Zhang','Zimmermann','Haddad','Mensah','Novotný','Kovačević','Al-Sayed','Da Silva'
]) WITH ORDINALITY AS t(n, ord);

-- User number k (0-based) gets first name a = j mod nF and last name
-- b = (j div nF + 37*a) mod nL with j = k mod (nF*nL): a bijection, so names
-- are unique within a round; later rounds get a numeric suffix (2, 3, ...).
CREATE TEMP TABLE seed_people ON COMMIT DROP AS
WITH dims AS (
  SELECT (SELECT count(*) FROM seed_first)::int AS nf,
         (SELECT count(*) FROM seed_last)::int  AS nl
), idx AS (
  SELECT k, nf, nl, k % (nf*nl) AS j, k / (nf*nl) AS r
  FROM dims, generate_series(0, :seed_users - 1) AS k
), named AS (
  SELECT idx.k, f.name AS first_name, l.name AS last_name, idx.r
  FROM idx
  JOIN seed_first f ON f.i = idx.j % idx.nf
  JOIN seed_last  l ON l.i = (idx.j / idx.nf + 37 * (idx.j % idx.nf)) % idx.nl
)
SELECT k, first_name, last_name,
       regexp_replace(translate(lower(first_name), 'áéíóúñçöüøåäëïãčšýöé', 'aeiouncouoaaeiacsyoe'), '[^a-z0-9]', '', 'g')
       || '.' ||
       regexp_replace(translate(lower(last_name),  'áéíóúñçöüøåäëïãčšýöé', 'aeiouncouoaaeiacsyoe'), '[^a-z0-9]', '', 'g')
       || CASE WHEN r > 0 THEN (r + 1)::text ELSE '' END AS username
FROM named;

-- Users: copy the template row, overriding identity columns.
INSERT INTO users
SELECT (jsonb_populate_record(u, jsonb_build_object(
          'id',         substr(md5(gen_random_uuid()::text), 1, 26),
          'username',   p.username,
          'email',      p.username || '@' || :'email_domain',
          'firstname',  p.first_name,
          'lastname',   p.last_name,
          'nickname',   '',
          'createat',   (extract(epoch FROM clock_timestamp()) * 1000)::bigint - p.k,
          'updateat',   (extract(epoch FROM clock_timestamp()) * 1000)::bigint - p.k
       ))).*
FROM users u CROSS JOIN seed_people p
WHERE u.id = :'template_id'
ON CONFLICT DO NOTHING;

-- Leavers: five people who left the company. stack.sh deactivates them
-- through the API afterwards (their surnames are not in the list above).
INSERT INTO users
SELECT (jsonb_populate_record(u, jsonb_build_object(
          'id',         substr(md5(gen_random_uuid()::text), 1, 26),
          'username',   l.username,
          'email',      l.username || '@' || :'email_domain',
          'firstname',  l.first_name,
          'lastname',   l.last_name,
          'nickname',   '',
          'createat',   (extract(epoch FROM clock_timestamp()) * 1000)::bigint,
          'updateat',   (extract(epoch FROM clock_timestamp()) * 1000)::bigint
       ))).*
FROM users u CROSS JOIN (VALUES
  ('Gregor',  'Halvorsen',  'gregor.halvorsen'),
  ('Marisol', 'Quintero',   'marisol.quintero'),
  ('Desmond', 'Achterberg', 'desmond.achterberg'),
  ('Ottilie', 'Vance',      'ottilie.vance'),
  ('Rashid',  'Faraday',    'rashid.faraday')
) AS l(first_name, last_name, username)
WHERE u.id = :'template_id'
ON CONFLICT DO NOTHING;

-- Memberships: give every active seeded user (email in the seed domain, not a
-- bot) the template's team and channel memberships, where missing.
CREATE TEMP TABLE seed_targets ON COMMIT DROP AS
SELECT u.id FROM users u
WHERE u.email LIKE '%@' || :'email_domain'
  AND u.deleteat = 0
  AND u.id <> :'template_id'
  AND NOT EXISTS (SELECT 1 FROM bots b WHERE b.userid = u.id);

INSERT INTO teammembers
SELECT (jsonb_populate_record(tm, jsonb_build_object('userid', t.id))).*
FROM teammembers tm CROSS JOIN seed_targets t
WHERE tm.userid = :'template_id' AND tm.teamid = :'team_id'
ON CONFLICT DO NOTHING;

INSERT INTO channelmembers
SELECT (jsonb_populate_record(cm, jsonb_build_object('userid', t.id))).*
FROM channelmembers cm CROSS JOIN seed_targets t
WHERE cm.userid = :'template_id'
ON CONFLICT DO NOTHING;

INSERT INTO channelmemberhistory
SELECT (jsonb_populate_record(h, jsonb_build_object('userid', t.id))).*
FROM channelmemberhistory h CROSS JOIN seed_targets t
WHERE h.userid = :'template_id'
  AND NOT EXISTS (SELECT 1 FROM channelmemberhistory x
                  WHERE x.userid = t.id AND x.channelid = h.channelid);

COMMIT;
