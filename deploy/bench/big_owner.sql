-- One owner with :tasks tasks (psql -v owner=UUID -v tasks=N), inserted with SQL since the API
-- would take minutes, with the folded search copies the server writes (ASCII text: lower()).
-- Used by run.sh and ab.sh (SCRIPT=big_owner.lua).
insert into tasks (id, user_id, title, description, status, priority, due_date, version,
                   created_at, updated_at, title_search, description_search)
select gen_random_uuid(), :'owner', 'task ' || g, 'description of task ' || g,
       (array['todo', 'in_progress', 'done'])[1 + g % 3], 1 + g % 3,
       now() + g * interval '1 minute', 1, now() - g * interval '1 second', now(),
       'task ' || g, 'description of task ' || g
from generate_series(1, :tasks) g;
